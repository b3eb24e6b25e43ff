"""huggingface_hub + hf_xet as installed (Xet on) against the emulator's CAS: upload and
download byte-exact, through the CAS (not the bridge), with an isolated HF_HOME/HF_XET_CACHE.

The rest of this suite runs with HF_HUB_DISABLE_XET=1, which huggingface_hub reads once at
import time; so the Xet client runs in a child interpreter with a clean environment.
"""

import json
import os
import subprocess
import sys
import textwrap
import urllib.request

from conftest import WRITE
from emulator_proc import Emulator

CHILD = textwrap.dedent(
    """
    import hashlib, json, os, sys
    from huggingface_hub import HfApi, hf_hub_download, constants
    assert not constants.HF_HUB_DISABLE_XET
    import hf_xet  # noqa: F401  (the test is meaningless without it)
    repo, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    api = HfApi()
    api.create_repo(repo, exist_ok=True)
    data = os.urandom(size)
    small = b"hello xet\\n" * 10
    api.upload_file(path_or_fileobj=data, path_in_repo="big.bin", repo_id=repo)
    api.upload_file(path_or_fileobj=small, path_in_repo="small.txt", repo_id=repo)
    entries = {e.path: e for e in api.list_repo_tree(repo)}
    got = hf_hub_download(repo, "big.bin", cache_dir=os.path.join(out, "dl"))
    with open(got, "rb") as f:
        same = f.read() == data
    json.dump({
        "same": same,
        "sha": hashlib.sha256(data).hexdigest(),
        "xet_hash": entries["big.bin"].xet_hash,
        "lfs_sha": entries["big.bin"].lfs.sha256 if entries["big.bin"].lfs else None,
        "small_lfs": entries["small.txt"].lfs is not None,
    }, sys.stdout)
    """
)


def xet_env(emulator, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(
        {
            "HF_ENDPOINT": emulator.url,
            "HF_TOKEN": WRITE,
            "HF_HOME": str(tmp_path / "home"),
            "HF_XET_CACHE": str(tmp_path / "xet-cache"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    return env


def test_upload_and_download_through_the_cas(emulator, new_repo, stats, tmp_path):
    repo = new_repo()
    size = 5 << 20
    stats.reset()
    r = subprocess.run(
        [sys.executable, "-c", CHILD, repo, str(size), str(tmp_path)],
        env=xet_env(emulator, tmp_path),
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["same"], "hf_hub_download through hf_xet is byte-exact"
    assert out["lfs_sha"] == out["sha"]
    assert out["xet_hash"] and len(out["xet_hash"]) == 64
    s = stats()
    # The upload went through the CAS (no LFS batch), and so did the download (no bridge).
    assert s["xorb_uploads"] >= 1, s
    assert s["cas_bytes_received"] >= size, s
    assert s["routes"].get("lfs-batch", 0) == 0, s
    assert s["reconstructions"] >= 1 and s["xorb_fetches"] >= 1, s
    assert s["cas_bytes_served"] >= size, s
    assert s["routes"].get("cas-bridge", 0) == 0, s
    assert s["routes"].get("xet-token", 0) >= 2, s
    # hf_xet 1.8 uploads xorbs through upload grants when offered, and shards through v2.
    assert s["routes"].get("cas-xorb-grant", 0) >= 1, s
    assert s["routes"].get("cas-grant-put", 0) >= 1, s
    assert s["routes"].get("cas-xorb-commit", 0) >= 1, s
    assert s["routes"].get("cas-shard-v2", 0) >= 1, s
    assert s["routes"].get("cas-reconstruction-v2", 0) >= 1, s


def test_clients_fall_back_to_v1_routes_and_direct_xorb_uploads(tmp_path):
    """`--no-xet-v2 --no-xet-grants`: hf_xet falls back to v1 reconstructions and shards and to
    `POST /v1/xorbs`, and still round-trips byte-exact."""
    emu = Emulator(["--token", f"alice:write:{WRITE}", "--no-xet-v2", "--no-xet-grants"])
    try:
        r = subprocess.run(
            [sys.executable, "-c", CHILD, "alice/fallback", str(1 << 20), str(tmp_path)],
            env=xet_env(emu, tmp_path),
            capture_output=True,
            text=True,
            timeout=100,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        assert json.loads(r.stdout)["same"]
        with urllib.request.urlopen(emu.url + "/_emulator/stats", timeout=10) as resp:
            routes = json.loads(resp.read())["routes"]
        assert routes.get("cas-xorb-upload", 0) >= 1, routes
        assert routes.get("cas-grant-put", 0) == 0, routes
        assert routes.get("cas-shard-v1", 0) >= 1, routes
        assert routes.get("cas-reconstruction-v1", 0) >= 1, routes
    finally:
        emu.stop()
