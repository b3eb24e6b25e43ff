"""The official client with hf_xet against the emulator's Xet storage: byte-exact round trips
(small, a few hundred MiB, a thousand files), repos mixing migrated LFS uploads and Xet uploads,
Range reads through the resolve bridge, deduplication measured on the CAS, token refresh during a
slow download, and the protocol variants hf_xet can be forced into (v1/v2, grants or direct)."""

import hashlib
import os

import pytest
from huggingface_hub import CommitOperationAdd, constants, hf_hub_download, snapshot_download

from conftest import READ, WRITE, control, emulator_args
from emulator_proc import Emulator
from xet_util import copy_with_patch, run_client, sha256_file, write_random

MiB = 1 << 20


def read(path):
    with open(path, "rb") as f:
        return f.read()


def entries(api, repo_id, **kw):
    return {e.path: e for e in api.list_repo_tree(repo_id, recursive=True, **kw) if hasattr(e, "lfs")}


@pytest.mark.modes("xet")
def test_small_files_round_trip_through_the_cas(api, new_repo, cache_dir, stats):
    repo_id = new_repo()
    small = b"hello xet\n"
    blobs = {"model.safetensors": os.urandom(300_000), "w/tiny.bin": os.urandom(1), "empty.bin": b""}
    stats.reset()
    api.create_commit(
        repo_id,
        operations=[CommitOperationAdd("README.md", small)] + [CommitOperationAdd(p, d) for p, d in blobs.items()],
        commit_message="xet upload",
    )
    s = stats()
    assert s["lfs_bytes_uploaded"] == 0, "hf_xet uploads never touch the LFS batch path"
    assert s["routes"].get("lfs-batch", 0) == 0 and s["routes"].get("xet-token", 0) >= 1, s
    assert s["cas_bytes_received"] >= 300_000 and s["xorb_uploads"] >= 1
    tree = entries(api, repo_id)
    assert tree["README.md"].lfs is None and tree["README.md"].xet_hash is None
    for path, data in blobs.items():
        if not data:
            continue  # an empty file is a plain git blob, never LFS/Xet
        e = tree[path]
        assert e.lfs is not None and e.lfs.sha256 == hashlib.sha256(data).hexdigest()
        assert e.xet_hash and len(e.xet_hash) == 64
    stats.reset()
    for path, data in dict(blobs, **{"README.md": small}).items():
        assert read(hf_hub_download(repo_id, path, cache_dir=cache_dir)) == data, path
    s = stats()
    # Through the CAS, not the resolve bridge.
    assert s["reconstructions"] >= 2 and s["xorb_fetches"] >= 1
    assert s["routes"].get("cas-bridge", 0) == 0 and s["routes"].get("xet-token", 0) >= 1, s
    assert s["cas_bytes_served"] >= 300_000


@pytest.mark.modes("xet")
@pytest.mark.budget(400)
def test_300_mib_round_trip(api, new_repo, tmp_path, stats):
    repo_id = new_repo()
    size = 300 * MiB + 12345
    src = tmp_path / "big.bin"
    digest = write_random(src, size)
    stats.reset()
    api.upload_file(path_or_fileobj=str(src), path_in_repo="big.bin", repo_id=repo_id)
    s = stats()
    assert s["lfs_bytes_uploaded"] == 0
    # Random bytes do not compress: everything (plus chunk headers, shard) goes to the CAS once.
    assert size <= s["cas_bytes_received"] < size + 4 * MiB
    src.unlink()
    (entry,) = api.get_paths_info(repo_id, ["big.bin"])
    assert entry.size == size and entry.lfs.sha256 == digest and entry.xet_hash
    stats.reset()
    path = hf_hub_download(repo_id, "big.bin", cache_dir=str(tmp_path / "cache"))
    assert os.path.getsize(path) == size and sha256_file(path) == digest
    assert size <= stats()["cas_bytes_served"] < size + 4 * MiB


@pytest.mark.modes("xet")
@pytest.mark.budget(400)
def test_a_thousand_files(api, new_repo, tmp_path, stats):
    repo_id = new_repo(repo_type="dataset")
    src = tmp_path / "src"
    want = {}
    for i in range(1000):
        rel = f"shard-{i // 100:02d}/part-{i:04d}.bin"
        data = os.urandom(1024 + i)
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
        want[rel] = data
    stats.reset()
    api.upload_folder(folder_path=str(src), repo_id=repo_id, repo_type="dataset")
    assert stats()["lfs_bytes_uploaded"] == 0
    tree = entries(api, repo_id, repo_type="dataset")
    assert sum(1 for p in want if tree[p].xet_hash) == 1000
    local = snapshot_download(repo_id, repo_type="dataset", cache_dir=str(tmp_path / "cache"))
    got = {}
    for root, _, names in os.walk(local):
        for n in names:
            full = os.path.join(root, n)
            got[os.path.relpath(full, local)] = read(full)
    got.pop(".gitattributes")
    assert got == want


@pytest.mark.modes("xet", "noxet")
def test_snapshot_of_a_repo_mixing_migrated_lfs_and_xet_files(api, new_repo, tmp_path, stats, monkeypatch, mode):
    """LFS basic and multipart uploads (HF_HUB_DISABLE_XET=1 clients) are migrated to Xet by the
    Hub; a snapshot of a repo mixing them with hf_xet uploads is byte-exact in either client mode."""
    from conftest import MULTIPART_THRESHOLD

    repo_id = new_repo()
    lfs = {"lfs/basic.bin": os.urandom(300_000), "lfs/multi.bin": os.urandom(MULTIPART_THRESHOLD + 700_000)}
    xet = {"xet/a.safetensors": os.urandom(2 * MiB + 3), "xet/b.bin": os.urandom(70_000)}
    plain = {"config.json": b'{"a": 1}\n'}
    with monkeypatch.context() as m:
        m.setattr(constants, "HF_HUB_DISABLE_XET", True)
        stats.reset()
        api.create_commit(repo_id, operations=[CommitOperationAdd(p, d) for p, d in lfs.items()], commit_message="lfs")
        s = stats()
        assert s["lfs_bytes_uploaded"] == sum(map(len, lfs.values())) and s["cas_bytes_received"] == 0
    with monkeypatch.context() as m:
        m.setattr(constants, "HF_HUB_DISABLE_XET", False)
        stats.reset()
        ops = [CommitOperationAdd(p, d) for p, d in dict(xet, **plain).items()]
        api.create_commit(repo_id, operations=ops, commit_message="xet")
        s = stats()
        assert s["lfs_bytes_uploaded"] == 0 and s["cas_bytes_received"] >= sum(map(len, xet.values()))
    tree = entries(api, repo_id)
    for p, d in dict(lfs, **xet).items():
        assert tree[p].lfs.sha256 == hashlib.sha256(d).hexdigest(), p
        assert tree[p].xet_hash, f"{p} has no xetHash (LFS uploads must be migrated)"
    local = snapshot_download(repo_id, cache_dir=str(tmp_path / "cache"))
    for p, d in dict(lfs, **xet, **plain).items():
        assert read(os.path.join(local, p)) == d, p


@pytest.mark.modes("xet", "noxet")
def test_range_reads_through_the_bridge(api, new_repo, endpoint):
    """A plain HTTP client reading ranges of a Xet file: resolve redirects to the bridge, which
    honours every Range form with 206 + Content-Range."""
    import httpx2

    repo_id = new_repo()
    data = os.urandom(3 * MiB + 4321)
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)
    url = f"{endpoint}/{repo_id}/resolve/main/w.bin"
    auth = {"Authorization": f"Bearer {READ}"}
    n = len(data)
    with httpx2.Client(follow_redirects=False, timeout=30) as c:
        head = c.head(url, headers=auth)
        assert head.status_code == 302, head
        assert head.headers["x-xet-hash"] and head.headers["x-linked-size"] == str(n)
        assert head.headers["x-linked-etag"].strip('"') == hashlib.sha256(data).hexdigest()
        link = head.headers["link"]
        assert 'rel="xet-auth"' in link and 'rel="xet-reconstruction-info"' in link
        bridge = head.headers["location"]
        assert not bridge.startswith(endpoint), "the bridge lives on a foreign origin (the CDN)"
    cases = {
        "bytes=0-0": (0, 1),
        "bytes=0-99": (0, 100),
        f"bytes={MiB - 10}-{MiB + 10}": (MiB - 10, MiB + 11),  # across a likely chunk boundary
        f"bytes={n // 2}-{n // 2 + 65535}": (n // 2, n // 2 + 65536),
        f"bytes={n - 5000}-": (n - 5000, n),
        "bytes=-777": (n - 777, n),
        f"bytes=100-{n + 999}": (100, n),  # an end past EOF is clamped
    }
    with httpx2.Client(follow_redirects=True, timeout=30) as c:
        for rng, (lo, hi) in cases.items():
            r = c.get(url, headers=dict(auth, Range=rng))
            assert r.status_code == 206, (rng, r.status_code)
            assert r.headers["content-range"] == f"bytes {lo}-{hi - 1}/{n}", rng
            assert r.content == data[lo:hi], rng
        full = c.get(url, headers=auth)
        assert full.status_code == 200 and full.content == data
        bad = c.get(url, headers=dict(auth, Range=f"bytes={n}-"))
        assert bad.status_code == 416


# ---- dedup ------------------------------------------------------------------------------------

DEDUP_SIZE = 256 * MiB


@pytest.fixture(scope="module")
def dedup_base(api, tmp_path_factory):
    """A 256 MiB random file uploaded with hf_xet from its own HF_HOME (`home`)."""
    from conftest import new_repo_id

    d = tmp_path_factory.mktemp("dedup")
    home = d / "home"
    home.mkdir()
    src = d / "base.bin"
    write_random(src, DEDUP_SIZE)
    repo_id = new_repo_id("dedup")
    api.create_repo(repo_id)
    with pytest.MonkeyPatch.context() as m:
        m.setenv("HF_HOME", str(home))
        m.setenv("HF_XET_CACHE", str(home / "xet"))
        api.upload_file(path_or_fileobj=str(src), path_in_repo="base.bin", repo_id=repo_id)
    return {"repo": repo_id, "src": src, "home": home, "dir": d}


def _reupload_changed(api, base, offset, monkeypatch, home, stats, name):
    """Uploads base with 1 MiB at `offset` replaced by random bytes, from HF_HOME `home`;
    returns the CAS bytes received."""
    changed = base["dir"] / f"{name}.bin"
    digest = copy_with_patch(base["src"], changed, offset, os.urandom(MiB))
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_XET_CACHE", str(home / "xet"))
    stats.reset()
    api.upload_file(path_or_fileobj=str(changed), path_in_repo=f"{name}.bin", repo_id=base["repo"])
    s = stats()
    (entry,) = api.get_paths_info(base["repo"], [f"{name}.bin"])
    assert entry.lfs.sha256 == digest and entry.size == DEDUP_SIZE
    changed.unlink()
    figures = {k: s.get(k) for k in ("cas_bytes_received", "xorb_uploads", "dedup_queries")}
    print(f"\nDEDUP {name}: file {DEDUP_SIZE} B, 1 MiB changed at {offset}: {figures}")
    return s["cas_bytes_received"]


@pytest.mark.modes("xet")
@pytest.mark.budget(300)
def test_dedup_same_hf_home_sends_about_the_changed_mib(api, dedup_base, monkeypatch, stats):
    """The local shard cache in HF_HOME knows every chunk of the first upload."""
    sent = _reupload_changed(api, dedup_base, 128 * MiB, monkeypatch, dedup_base["home"], stats, "same-home")
    assert MiB // 2 < sent < 3 * MiB, sent


@pytest.mark.modes("xet")
@pytest.mark.budget(300)
def test_dedup_fresh_hf_home_uses_global_dedup(api, dedup_base, monkeypatch, stats, tmp_path):
    """A fresh HF_HOME has no shard cache: the client finds the old xorbs through the CAS's
    global dedup query and still sends only about the changed MiB."""
    home = tmp_path / "fresh-home"
    home.mkdir()
    sent = _reupload_changed(api, dedup_base, 77 * MiB + 12345, monkeypatch, home, stats, "fresh-home")
    assert stats()["dedup_queries"] >= 1
    assert any((home / "xet").rglob("*")), "hf_xet used the fresh HF_HOME's cache"
    assert MiB // 2 < sent < 3 * MiB, sent


# ---- child-process runs: token refresh and forced protocol variants -----------------------------


@pytest.mark.modes("xet")
@pytest.mark.budget(240)
def test_token_expiry_mid_download_is_refreshed(tmp_path):
    """Tokens live 45 s and hf_xet refreshes 30 s before expiry; a download kept > 15 s long by
    a bandwidth cap needs a second token, and ends byte-exact. hf_xet asks for all its (4 MiB)
    reconstructions early while prefetching, so the fetch URLs live only 8 s: their 403 sends the client back
    to the (token-checked) reconstruction route late in the download."""
    size = 40 * MiB
    src = tmp_path / "slow.bin"
    digest = write_random(src, size)
    with Emulator(emulator_args("xet", "--xet-token-ttl", "45", "--xet-url-ttl", "8")) as emu:
        repo = "alice/slow"
        import urllib.request

        from huggingface_hub import HfApi

        HfApi(endpoint=emu.url, token=WRITE).create_repo(repo)
        run_client(emu.url, WRITE, repo, [{"op": "upload", "src": str(src), "path": "slow.bin"}], tmp_path / "h1")
        src.unlink()

        def emu_control(path, body=None):
            req = urllib.request.Request(emu.url + path, data=body, method="POST" if body is not None else "GET")
            with urllib.request.urlopen(req, timeout=10) as r:
                import json

                return json.loads(r.read() or b"null")

        emu_control("/_emulator/shaping", b'{"bandwidth": "1M"}')
        emu_control("/_emulator/stats/reset", b"")
        import time

        t0 = time.monotonic()
        out = run_client(
            emu.url, READ, repo, [{"op": "download", "path": "slow.bin", "cache_dir": str(tmp_path / "c")}],
            tmp_path / "h2",
            env={
                # Two connections at 1 MiB/s each, and reconstructions asked for in small slices, so
                # the client talks to the CAS (with its token) all through the download.
                "HF_XET_CLIENT_ENABLE_ADAPTIVE_CONCURRENCY": "false",
                "HF_XET_CLIENT_AC_INITIAL_DOWNLOAD_CONCURRENCY": "2",
                "HF_XET_CLIENT_AC_MAX_DOWNLOAD_CONCURRENCY": "2",
                "HF_XET_RECONSTRUCTION_MIN_RECONSTRUCTION_FETCH_SIZE": "4mb",
                "HF_XET_RECONSTRUCTION_MAX_RECONSTRUCTION_FETCH_SIZE": "4mb",
                "HF_XET_RECONSTRUCTION_MIN_PREFETCH_BUFFER": "4mb",
            },
        )
        elapsed = time.monotonic() - t0
        s = emu_control("/_emulator/stats")
        print(f"\nTOKEN download {elapsed:.1f} s, routes {s['routes']}")
        assert elapsed > 15, elapsed
        assert sha256_file(out["slow.bin"]) == digest
        assert s["routes"].get("xet-token", 0) >= 2, s["routes"]


VARIANTS = [
    # (reconstruction API, shard API, direct xorb upload)
    ("1", "1", True),
    ("2", "2", False),
    ("1", "2", False),
    ("2", "1", True),
]


@pytest.mark.modes("xet")
@pytest.mark.parametrize("recon,shard,direct", VARIANTS, ids=[f"recon{r}-shard{s}-{'direct' if d else 'grants'}" for r, s, d in VARIANTS])
def test_forced_protocol_variants(api, new_repo, tmp_path, stats, recon, shard, direct):
    repo_id = new_repo()
    src = tmp_path / "v.bin"
    digest = write_random(src, 3 * MiB + 17)
    env = {
        "HF_XET_CLIENT_RECONSTRUCTION_API_VERSION": recon,
        "HF_XET_CLIENT_SHARD_API_VERSION": shard,
    }
    if direct:
        env["HF_XET_CLIENT_LEGACY_DIRECT_XORB_UPLOAD"] = "1"
    stats.reset()
    run_client(api.endpoint, WRITE, repo_id, [{"op": "upload", "src": str(src), "path": "v.bin"}], tmp_path / "h1", env)
    up = stats()["routes"]
    stats.reset()
    out = run_client(
        api.endpoint, WRITE, repo_id, [{"op": "download", "path": "v.bin", "cache_dir": str(tmp_path / "c")}],
        tmp_path / "h2", env,
    )
    down = stats()["routes"]
    assert sha256_file(out["v.bin"]) == digest
    print(f"\nVARIANT {recon}/{shard}/{direct}: upload {up} download {down}")
    assert up.get(f"cas-shard-v{shard}", 0) >= 1 and up.get(f"cas-shard-v{3 - int(shard)}", 0) == 0
    if direct:
        assert up.get("cas-xorb-upload", 0) >= 1 and up.get("cas-xorb-grant", 0) == 0
    else:
        assert up.get("cas-xorb-grant", 0) >= 1 and up.get("cas-xorb-upload", 0) == 0
    assert down.get(f"cas-reconstruction-v{recon}", 0) >= 1
    assert down.get(f"cas-reconstruction-v{3 - int(recon)}", 0) == 0
