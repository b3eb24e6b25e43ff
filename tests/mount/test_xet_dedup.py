"""One content-addressed chunk cache across revisions, paths and repos (issue 12 item 2).

A Xet file is uploaded with the official client and hf_xet (v1), then changed in a few places
(v2, about 1.6% of its bytes) with the same client cache, so the Hub stores v2 as v1's xorbs plus
a few new chunks. A mount @v1 reads all of v1; a NEW mount @v2 on the same cache dir reads all of
v2: what the emulator serves from the CAS for it must be about the changed bytes, not the file.
The figures are the emulator's own counters (xorb bytes it served), the bytes are checked
against the originals."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conftest import HUBFS, WRITE_TOKEN, sha
from test_metrics import free_port, scrape, value

# Reads through the CAS: a legacy (--no-xet) Hub has none; deselected under HUBFS_TEST_LEGACY_HUB=1.
pytestmark = pytest.mark.needs_xet

MIB = 1 << 20
SIZE = 64 * MIB
# v2: one contiguous 512 KiB region and two scattered 256 KiB regions rewritten (1.56%).
EDITS = [(10 * MIB + 4321, 512 << 10), (33 * MIB + 77, 256 << 10), (57 * MIB + 999, 256 << 10)]
CHANGED = sum(n for _, n in EDITS)
# Changed bytes, plus re-chunked neighbours (a chunk or two, <= 128 KiB each, at each edge of
# an edit), plus the footers of the new xorbs: far under this bound, far over it if v2 were
# fetched whole (64 MiB) or even a tenth of it.
BOUND = 0.08 * SIZE

UPLOAD = r"""
import sys
from huggingface_hub import HfApi

endpoint, token, repo, local, remote = sys.argv[1:6]
api = HfApi(endpoint=endpoint, token=token)
api.create_repo(repo, exist_ok=True)
info = api.upload_file(path_or_fileobj=local, path_in_repo=remote, repo_id=repo)
print(info.oid)
"""


def upload(emulator, home, repo, local, remote):
    """Uploads with huggingface_hub + hf_xet in a child process sharing `home` (HF_HOME and the
    xet cache) across uploads, as one user's machine would; returns the commit id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(home), HF_XET_CACHE=str(Path(home) / "xet"), NO_PROXY="127.0.0.1,localhost",
               HF_HUB_DISABLE_TELEMETRY="1")
    r = subprocess.run([sys.executable, "-c", UPLOAD, emulator.url, WRITE_TOKEN, repo, str(local), remote],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def versions(emulator, tmp_path_factory):
    d = tmp_path_factory.mktemp("xet-dedup")
    home = Path(tempfile.mkdtemp(prefix="hubfs-xet-home-"))
    rng = np.random.default_rng(2026)
    v1 = rng.integers(0, 256, SIZE, dtype=np.uint8)
    v2 = v1.copy()
    for off, n in EDITS:
        v2[off:off + n] = rng.integers(0, 256, n, dtype=np.uint8)
    f1, f2 = d / "v1.bin", d / "v2.bin"
    f1.write_bytes(v1.tobytes())
    f2.write_bytes(v2.tobytes())
    # The same content 4 KiB later (a header prepended): another file, mostly v1's chunks.
    shifted = d / "shifted.bin"
    shifted.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes() + v1.tobytes())
    repo = "alice/xet-dedup"
    c1 = upload(emulator, home, repo, f1, "model.bin")
    c2 = upload(emulator, home, repo, f2, "model.bin")
    other = "alice/xet-dedup-other"
    upload(emulator, home, other, f1, "copy/model.bin")
    upload(emulator, home, other, shifted, "shifted.bin")
    return {"repo": repo, "other": other, "c1": c1, "c2": c2, "v1": f1, "v2": f2, "shifted": shifted}


def cas_served(emulator):
    return emulator.stats()["cas_bytes_served"]


def read_all(path):
    """sha256 of the file, read start to end through the mount."""
    return sha(path)


def test_v2_after_v1_moves_about_the_changed_bytes(versions, mount, emulator, tmp_path):
    cache = tmp_path / "shared-cache"
    v = versions
    m1 = mount(f"{v['repo']}@{v['c1']}", cache_dir=cache, name="v1")
    os.listdir(m1.path)
    before = cas_served(emulator)
    assert read_all(m1 / "model.bin") == sha(v["v1"])
    v1_moved = cas_served(emulator) - before
    s1 = m1.status()
    assert v1_moved >= SIZE * 0.9, f"v1 read through the CAS ({v1_moved} bytes)"
    assert s1["chunks"]["misses"] > 0 and s1["chunks"]["fetched_bytes"] >= SIZE * 0.9, s1["chunks"]
    m1.unmount()

    # A new mount, same cache dir, the next revision.
    port = free_port()
    m2 = mount(f"{v['repo']}@{v['c2']}", cache_dir=cache, name="v2", args=["--metrics-addr", f"127.0.0.1:{port}"])
    os.listdir(m2.path)
    before = cas_served(emulator)
    assert read_all(m2 / "model.bin") == sha(v["v2"])
    moved = cas_served(emulator) - before
    s2 = m2.status()
    print(f"v1 read: {v1_moved} bytes from the CAS; v2 read: {moved} bytes from the CAS "
          f"({100 * moved / SIZE:.2f}% of {SIZE}; {CHANGED} bytes changed); chunks {s2['chunks']}; "
          f"xet {s2['xet']}")
    assert s2["xet"]["fallbacks"] == 0, s2["xet"]
    assert s2["chunks"]["hit_bytes"] >= SIZE * 0.9, "v2's unchanged chunks came from the chunk store"
    assert s2["chunks"]["corrupt"] == 0
    assert moved >= CHANGED * 0.9, "the changed bytes were fetched"
    assert moved < BOUND, f"v2 moved {moved} bytes from the CAS, over {BOUND}"
    human = subprocess.run([HUBFS, "status", str(m2.path)], capture_output=True, text=True, timeout=20).stdout
    assert "xet chunks:" in human and f"{s2['chunks']['hits']} hits" in human, human
    # The metrics carry the same figures (read from the same status JSON at the scrape).
    samples, _ = scrape(port)
    assert value(samples, "hubfs_chunk_store_hit_bytes_total") >= s2["chunks"]["hit_bytes"]
    assert value(samples, "hubfs_chunk_store_misses_total") >= s2["chunks"]["misses"] > 0


def fill_with_v1(mount, v, cache, name):
    """Reads v1 whole through a mount on `cache` (byte-exact), leaving its chunks in the store."""
    m1 = mount(f"{v['repo']}@{v['c1']}", cache_dir=cache, name=name)
    os.listdir(m1.path)
    assert read_all(m1 / "model.bin") == sha(v["v1"])
    m1.unmount()


def test_same_content_at_other_paths_and_repos_is_fetched_once(versions, mount, emulator, tmp_path):
    cache = tmp_path / "shared-cache"
    v = versions
    fill_with_v1(mount, v, cache, "first")

    m2 = mount(v["other"], cache_dir=cache, name="other")
    os.listdir(m2.path)
    before = cas_served(emulator)
    # The same file at another path in another repo: one content, nothing to fetch.
    assert read_all(m2 / "copy/model.bin") == sha(v["v1"])
    same = cas_served(emulator) - before
    # Another file that holds v1's bytes 4 KiB in: its chunks past the first few are v1's.
    before = cas_served(emulator)
    assert read_all(m2 / "shifted.bin") == sha(v["shifted"])
    shifted = cas_served(emulator) - before
    st = m2.status()
    print(f"same file in another repo: {same} bytes from the CAS; shifted copy: {shifted} bytes; "
          f"chunks {st['chunks']}")
    assert same < 0.01 * SIZE, same
    assert shifted < BOUND, shifted
    assert st["chunks"]["hit_bytes"] >= SIZE * 0.9
    assert st["xet"]["fallbacks"] == 0, st["xet"]


def test_damaged_chunk_store_is_refetched_never_served(versions, mount, emulator, tmp_path):
    """Bytes flipped in the chunk store's files (between two mounts) fail their checks: those
    chunks are fetched again and the reader gets the right bytes."""
    import shutil
    cache = tmp_path / "damaged"
    v = versions
    fill_with_v1(mount, v, cache, "fill")
    # No file blocks left (the read must go to the chunk store), and every chunk data file
    # damaged at four places.
    shutil.rmtree(cache / "blocks")
    damaged = 0
    for p in (cache / "chunks" / "blocks").rglob("*.data"):
        size = p.stat().st_size
        with open(p, "r+b") as f:
            for k in range(1, 5):
                f.seek(size * k // 5)
                b = f.read(1)
                f.seek(size * k // 5)
                f.write(bytes([b[0] ^ 0x5A]))
        damaged += 1
    assert damaged > 0
    m2 = mount(f"{v['repo']}@{v['c1']}", cache_dir=cache, name="reread")
    os.listdir(m2.path)
    before = cas_served(emulator)
    assert read_all(m2 / "model.bin") == sha(v["v1"])
    moved = cas_served(emulator) - before
    st = m2.status()["chunks"]
    print(f"damaged chunk store: {moved} bytes refetched; chunks {st}")
    assert st["corrupt_blocks"] + st["corrupt"] >= 4, st
    assert st["hit_bytes"] >= SIZE * 0.8, "the undamaged chunks were served from the store"
    assert 0 < moved < BOUND, moved
