"""A Hub whose signed URLs serve only the range they were minted for (`--range-bound-urls`):
xet-client documents this for the real CAS's xorb URLs, and Hub clients report it for the resolve
redirect of Xet-backed files (docs/xet-plan.md, finding 12).

The official client still downloads there (with hf_xet, and over plain HTTP), so the mode is a
faithful Hub. hubfs reads every byte right: its chunk checks need the xorb footers, which such a
CAS refuses, so Xet files go through the bridge, after one refusal rather than one per run. Its
CDN location memo stops reusing a location on a CDN that refused a reused one, instead of paying
a refusal and a new resolve for every range."""

import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import WRITE_TOKEN, Emulator, Mount, is_mounted, run_mount, sha
from test_xet_read import isolated_client_env, seed_with_xet

pytestmark = pytest.mark.needs_xet

SIZE = 24 << 20
REPO = "alice/range-bound"

DOWNLOAD = r"""
import sys
from huggingface_hub import hf_hub_download
endpoint, token, repo, name, out = sys.argv[1:6]
print(hf_hub_download(repo, name, endpoint=endpoint, token=token, cache_dir=out))
"""


@pytest.fixture(scope="module")
def bound(tmp_path_factory):
    d = tmp_path_factory.mktemp("range-bound")
    emu = Emulator(d / "emu", ["--range-bound-urls"])
    (d / "emu").mkdir()
    emu.start()
    src = d / "big.bin"
    src.write_bytes(np.random.default_rng(31).integers(0, 256, SIZE, dtype=np.uint8).tobytes())
    seed_with_xet(emu, REPO, {"big.bin": src})
    yield emu, src
    emu.stop()


def redirect_of(emu, range_header):
    """The resolve redirect's Location for a request with `range_header` (None: no Range)."""

    class NoFollow(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    if range_header:
        headers["Range"] = range_header
    req = urllib.request.Request(f"{emu.url}/{REPO}/resolve/main/big.bin", headers=headers)
    try:
        urllib.request.build_opener(NoFollow).open(req, timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 302, e.code
        return e.headers["Location"]
    raise AssertionError("no redirect")


def get(url, range_header):
    req = urllib.request.Request(url, headers={"Range": range_header} if range_header else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def test_a_bound_location_serves_its_own_range_only(bound):
    emu, src = bound
    data = src.read_bytes()
    location = redirect_of(emu, "bytes=0-99")
    assert get(location, "bytes=0-99") == (206, data[:100])
    assert get(location, "bytes=100-199")[0] == 403
    assert get(location, None)[0] == 403
    whole = redirect_of(emu, None)
    assert get(whole, "bytes=0-99")[0] == 403


@pytest.mark.parametrize("disable_xet", ["", "1"], ids=["hf_xet", "http"])
def test_the_official_client_downloads_from_it(bound, tmp_path, disable_xet):
    """The mode is a Hub the official client works with, through the CAS and through the bridge."""
    emu, src = bound
    env = isolated_client_env()
    if disable_xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    r = subprocess.run([sys.executable, "-c", DOWNLOAD, emu.url, WRITE_TOKEN, REPO, "big.bin",
                        str(tmp_path / "hf")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sha(r.stdout.strip().splitlines()[-1]) == sha(src)


def test_hubfs_reads_it_right_without_paying_a_refusal_per_range(bound, tmp_path):
    emu, src = bound
    mp, cache = tmp_path / "mnt", tmp_path / "cache"
    r = run_mount(REPO, mp, emu, token=WRITE_TOKEN, cache_dir=cache)
    assert r.returncode == 0, r.stderr
    m = Mount(mp, cache / "hubfs.log", cache)
    try:
        assert is_mounted(mp)
        os.listdir(mp)  # a file known from a listing has its xetHash: reads try the CAS first
        assert sha(mp / "big.bin") == sha(src)
        status = m.status()
        xet, hub = status["xet"], status["hub"]
        fetches = status["read"]["fetches"]
        assert fetches >= 16, status["read"]  # many ranges, so a per-range cost would show
        # The footer refusal sends Xet files to the bridge once for all: no CAS run, and only
        # the plans asked before the first refusal came back.
        assert xet["reads"] == 0 and xet["ranges_refused"] >= 1, xet
        assert xet["reconstructions"] <= 8, xet
        assert xet["fallbacks"] >= 1, xet
        # One refused reuse marks the CDN (plus the ranges already in flight with the location);
        # after that every range is resolved and fetched: two requests, not three.
        assert hub["location_refreshes"] <= 8, hub
        assert hub["requests"] <= 2 * fetches + 16, (hub, fetches)
        log = m.log.read_text()
        assert "look bound to the plan's ranges" in log
        assert "look bound to one range" in log
    finally:
        m.unmount()
