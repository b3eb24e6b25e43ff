"""Interop with the huggingface_hub cache: files the official client already downloaded
(`hf_hub_download` into HF_HUB_CACHE) are served from there, verified, with no file bytes from
the Hub; a tampered copy is never served; `hubfs warm` shows progress on a terminal and leaves
the files cached."""

import os
import pty
import random
import select
import subprocess
import time
import uuid
from pathlib import Path

from conftest import HUBFS, WRITE_TOKEN, bytes_served, hubfs_env, sha

MIB = 1 << 20


def make_repo(api, tmp_path, extra=()):
    """A repo with a regular file, an LFS file and a nested file; returns (repo_id, local dir)."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    rng = random.Random(uuid.uuid4().int)
    (src / "config.json").write_text('{"model_type": "tiny", "seed": %d}\n' % rng.randrange(1 << 30))
    (src / "weights.bin").write_bytes(rng.randbytes(3 * MIB + 777))
    (src / "sub" / "notes.txt").write_bytes(rng.randbytes(5000))
    for name in extra:
        (src / name).write_bytes(rng.randbytes(70_000))
    repo = f"alice/hfc-{uuid.uuid4().hex[:8]}"
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=str(src), commit_message="seed")
    return repo, src


def download(emulator, repo, names, hf_cache):
    from huggingface_hub import hf_hub_download
    for name in names:
        hf_hub_download(repo, name, cache_dir=str(hf_cache), endpoint=emulator.url, token=WRITE_TOKEN)


FILES = ["config.json", "weights.bin", "sub/notes.txt"]


def test_files_in_the_hf_cache_are_served_with_no_file_bytes(api, emulator, mount, tmp_path):
    repo, src = make_repo(api, tmp_path, extra=["not-downloaded.dat"])
    hf_cache = tmp_path / "hf-cache"
    download(emulator, repo, FILES, hf_cache)
    m = mount(repo, env_extra={"HF_HUB_CACHE": str(hf_cache)})
    before = bytes_served(emulator)
    for name in FILES:
        assert sha(m / name) == sha(src / name), name
    assert bytes_served(emulator) == before, "files in the HF cache were fetched again"
    # A file the HF cache does not hold is fetched as usual.
    assert sha(m / "not-downloaded.dat") == sha(src / "not-downloaded.dat")
    assert bytes_served(emulator) - before >= 70_000
    assert m.status()["daemon"]["hf_cache"] == str(hf_cache)


def test_a_tampered_blob_in_the_hf_cache_is_not_used(api, emulator, mount, tmp_path):
    repo, src = make_repo(api, tmp_path)
    hf_cache = tmp_path / "hf-cache"
    download(emulator, repo, FILES, hf_cache)
    blobs = hf_cache / f"models--{repo.replace('/', '--')}" / "blobs"
    big = next(p for p in blobs.iterdir() if p.stat().st_size == (src / "weights.bin").stat().st_size)
    data = bytearray(big.read_bytes())
    data[MIB + 5] ^= 0xFF  # same size, one byte different
    big.write_bytes(bytes(data))
    m = mount(repo, env_extra={"HF_HUB_CACHE": str(hf_cache)})
    before = bytes_served(emulator)
    assert sha(m / "weights.bin") == sha(src / "weights.bin")
    assert bytes_served(emulator) - before >= (src / "weights.bin").stat().st_size
    assert "does not match its digest" in m.log.read_text()
    # The untouched files still come from the HF cache.
    mid = bytes_served(emulator)
    assert sha(m / "config.json") == sha(src / "config.json")
    assert bytes_served(emulator) == mid


def test_no_hf_cache_fetches_from_the_hub(api, emulator, mount, tmp_path):
    repo, src = make_repo(api, tmp_path)
    hf_cache = tmp_path / "hf-cache"
    download(emulator, repo, ["weights.bin"], hf_cache)
    m = mount(repo, args=["--no-hf-cache"], env_extra={"HF_HUB_CACHE": str(hf_cache)})
    before = bytes_served(emulator)
    assert sha(m / "weights.bin") == sha(src / "weights.bin")
    assert bytes_served(emulator) - before >= (src / "weights.bin").stat().st_size


def run_in_pty(cmd, env, timeout=120):
    """Runs cmd with stdin/stdout/stderr on a pseudo-terminal; returns (exit code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=10), out.decode(errors="replace")


def test_warm_shows_progress_on_a_terminal_and_then_reads_move_nothing(api, emulator, mount, tmp_path):
    repo, src = make_repo(api, tmp_path, extra=["a.dat", "b.dat"])
    m = mount(repo, args=["--no-hf-cache"])
    # Slow enough that the bar is drawn while bytes move, not only at the end.
    emulator.shaping(bandwidth=4 * MIB)
    try:
        code, out = run_in_pty([HUBFS, "warm", str(m.path)], env=hubfs_env())
    finally:
        emulator.shaping()
    assert code == 0, out
    files = [p for p in m.path.rglob("*") if p.is_file()]  # the repo's .gitattributes too
    total = sum(p.stat().st_size for p in files)
    assert "ETA" in out and "/s" in out and "MiB" in out, out
    assert f"{len(files)}/{len(files)} files, done in" in out, out
    # Frames were drawn while bytes moved, not only the final one.
    assert f"0/{len(files)} files" in out, out
    before = bytes_served(emulator)
    for p in src.rglob("*"):
        if p.is_file():
            assert sha(m / p.relative_to(src)) == sha(p)
    for p in files:
        p.read_bytes()
    assert bytes_served(emulator) == before, "warmed files were fetched again"
    assert m.status()["read"]["bytes_fetched"] >= total


def test_warm_is_quiet_without_a_terminal_and_names_failures(api, emulator, mount, tmp_path):
    repo, src = make_repo(api, tmp_path)
    m = mount(repo, args=["--no-hf-cache"])
    r = subprocess.run([HUBFS, "warm", str(m / "sub"), str(m / "config.json")],
                       capture_output=True, text=True, env=hubfs_env(), timeout=60)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r
    before = bytes_served(emulator)
    assert sha(m / "sub" / "notes.txt") == sha(src / "sub" / "notes.txt")
    assert bytes_served(emulator) == before
    r = subprocess.run([HUBFS, "warm", str(m / "nope.bin")], capture_output=True, text=True,
                       env=hubfs_env(), timeout=60)
    assert r.returncode == 1 and "nope.bin" in r.stderr and "No such file" in r.stderr, r


def test_offline_mount_of_a_repo_the_hf_cache_holds(api, emulator, mount, tmp_path):
    from huggingface_hub import snapshot_download
    repo, src = make_repo(api, tmp_path)
    hf_cache = tmp_path / "hf-cache"
    snapshot_download(repo, cache_dir=str(hf_cache), endpoint=emulator.url, token=WRITE_TOKEN)
    before = bytes_served(emulator)
    requests = emulator.stats()["requests"]
    m = mount(repo, env_extra={"HF_HUB_CACHE": str(hf_cache), "HF_HUB_OFFLINE": "1"})
    assert m.status()["daemon"]["mode"] == "offline"
    shown = sorted(str(p.relative_to(m.path)) for p in m.path.rglob("*") if p.is_file())
    expected = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())
    assert [s for s in shown if s != ".gitattributes"] == expected
    for name in expected:
        assert sha(m / name) == sha(src / name), name
    assert bytes_served(emulator) == before
    assert emulator.stats()["requests"] == requests, "an offline mount spoke to the Hub"


def test_offline_mount_of_a_repo_the_hf_cache_does_not_hold_is_refused(api, emulator, tmp_path):
    from conftest import run_mount
    repo, _ = make_repo(api, tmp_path)
    r = run_mount(repo, tmp_path / "mnt", emulator, cache_dir=tmp_path / "cache",
                  env_extra={"HF_HUB_CACHE": str(tmp_path / "empty-hf-cache"), "HF_HUB_OFFLINE": "1"})
    assert r.returncode != 0 and "never resolved while online" in r.stderr, r.stderr


def mount_online_and_unmount(emulator, repo, tmp_path, cache, then=None, args=()):
    """Resolves the revision online with `cache` (listing nothing, unless `then(mountpoint)`)."""
    from conftest import run_mount
    mp = tmp_path / "online"
    r = run_mount(repo, mp, emulator, cache_dir=cache, args=["--read-only", "--no-hf-cache", *args])
    assert r.returncode == 0, r.stderr
    try:
        if then:
            then(mp)
    finally:
        subprocess.run([HUBFS, "unmount", str(mp)], check=True, timeout=60)


def test_offline_mount_whose_top_directory_was_never_listed_is_refused_naming_the_cause(
        api, emulator, tmp_path):
    from conftest import run_mount
    repo, _ = make_repo(api, tmp_path)
    cache = tmp_path / "cache"
    mount_online_and_unmount(emulator, repo, tmp_path, cache)
    r = run_mount(repo, tmp_path / "mnt", emulator, cache_dir=cache, args=["--offline"],
                  env_extra={"HF_HUB_CACHE": str(tmp_path / "empty-hf-cache")})
    assert r.returncode != 0, "a mount whose root cannot be listed must not pretend to work"
    assert "top directory" in r.stderr and "never listed while online" in r.stderr, r.stderr
    assert "snapshot_download" in r.stderr, r.stderr
    # A sub-directory mount says which directory.
    r = run_mount(repo + "/sub", tmp_path / "mnt2", emulator, cache_dir=cache, args=["--offline"])
    assert r.returncode != 0 and "directory sub of" in r.stderr, r.stderr


def test_offline_directory_never_listed_is_an_io_error_not_missing(api, emulator, mount, tmp_path):
    repo, src = make_repo(api, tmp_path)
    for i in range(4):
        api.upload_file(repo_id=repo, path_or_fileobj=b"x%d" % i, path_in_repo=f"sub/more{i}.txt")
    cache = tmp_path / "cache"
    # The top directory (4 entries) is listed; the listing of the whole tree (9), which would
    # have covered sub/ too, passes --max-entries and fails: sub/ is never listed.
    mount_online_and_unmount(emulator, repo, tmp_path, cache, then=lambda mp: os.listdir(mp),
                             args=["--max-entries", "6"])
    m = mount(repo, cache_dir=cache, args=["--offline"], env_extra={"HF_HUB_CACHE": str(tmp_path / "none")})
    assert "sub" in os.listdir(m.path) and (m / "sub").is_dir()
    try:
        os.listdir(m / "sub")
        raise AssertionError("a directory never listed cannot be listed offline")
    except OSError as e:
        assert e.errno == 5, e  # EIO: it exists, its content is unknown (not ENOENT)


def test_hf_cache_lists_a_revision_resolved_online_but_never_listed(api, emulator, mount, tmp_path):
    from huggingface_hub import snapshot_download
    repo, src = make_repo(api, tmp_path)
    cache = tmp_path / "cache"
    mount_online_and_unmount(emulator, repo, tmp_path, cache)
    hf_cache = tmp_path / "hf-cache"
    snapshot_download(repo, cache_dir=str(hf_cache), endpoint=emulator.url, token=WRITE_TOKEN)
    before = emulator.stats()["requests"]
    m = mount(repo, cache_dir=cache, env_extra={"HF_HUB_CACHE": str(hf_cache), "HF_HUB_OFFLINE": "1"})
    shown = sorted(str(p.relative_to(m.path)) for p in m.path.rglob("*") if p.is_file())
    expected = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())
    assert [s for s in shown if s != ".gitattributes"] == expected
    for name in expected:
        assert sha(m / name) == sha(src / name), name
    assert emulator.stats()["requests"] == before


OFFLINE_CHECK = r"""
import hashlib, json, os, sys
from pathlib import Path
from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download
repo, names, revision = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] or None
sha = lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest()
out = {"files": {n: sha(hf_hub_download(repo, n, revision=revision, local_files_only=True))
                 for n in names}}
snap = Path(snapshot_download(repo, revision=revision, local_files_only=True))
out["snapshot"] = {str(p.relative_to(snap)): sha(p) for p in snap.rglob("*") if p.is_file()}
info = scan_cache_dir(os.environ["HF_HUB_CACHE"])
out["warnings"] = [str(w) for w in info.warnings]
out["refs"] = {r.repo_id: sorted(r.refs) for r in info.repos}
print(json.dumps(out))
"""


def official_client_offline(hf_cache, repo, names, revision=""):
    """What the official client finds with HF_HUB_OFFLINE=1 and local_files_only=True."""
    import json
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HUB_CACHE=str(hf_cache), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    r = subprocess.run([sys.executable, "-c", OFFLINE_CHECK, repo, json.dumps(names), revision],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_warm_hf_cache_layout_serves_the_official_client_offline(api, emulator, mount, tmp_path):
    repo, src = make_repo(api, tmp_path)
    api.create_tag(repo, tag="v1")
    hf_cache = tmp_path / "hf-fill"
    m = mount(repo, args=["--no-hf-cache"])
    r = subprocess.run([HUBFS, "warm", str(m.path), "--hf-cache-layout"], capture_output=True, text=True,
                       env=hubfs_env(HF_HUB_CACHE=str(hf_cache)), timeout=120)
    assert r.returncode == 0 and r.stderr == "", r
    expected = {str(p.relative_to(src)): sha(p) for p in src.rglob("*") if p.is_file()}
    got = official_client_offline(hf_cache, repo, sorted(expected))
    assert got["files"] == expected, "hf_hub_download(local_files_only=True) must return byte-exact files"
    assert {k: v for k, v in got["snapshot"].items() if k != ".gitattributes"} == expected
    assert got["warnings"] == [] and got["refs"] == {repo: ["main"]}, got
    # Symlinks into blobs/, as huggingface_hub lays them out (one blob per content).
    folder = hf_cache / ("models--" + repo.replace("/", "--"))
    commit = (folder / "refs" / "main").read_text()
    link = folder / "snapshots" / commit / "sub" / "notes.txt"
    assert link.is_symlink() and os.readlink(link).startswith("../../../blobs/")
    assert api.repo_info(repo).sha == commit

    # A tag, one file, --hf-cache-dir: refs/v1, and the files of main already there are kept.
    tagged = mount(repo + "@v1", args=["--no-hf-cache"], name="tag")
    r = subprocess.run([HUBFS, "warm", str(tagged / "weights.bin"), "--hf-cache-layout",
                        "--hf-cache-dir", str(hf_cache)], capture_output=True, text=True,
                       env=hubfs_env(), timeout=120)
    assert r.returncode == 0, r
    got = official_client_offline(hf_cache, repo, ["weights.bin"], revision="v1")
    assert got["files"] == {"weights.bin": expected["weights.bin"]}
    assert got["refs"] == {repo: ["main", "v1"]}, got


def test_warm_hf_cache_layout_never_exports_local_changes(api, emulator, mount, tmp_path):
    repo, src = make_repo(api, tmp_path)
    m = mount(repo, args=["--no-hf-cache", "--commit-delay", "3600"])
    (m / "config.json").write_text('{"local": true}\n')
    hf_cache = tmp_path / "hf-fill"
    r = subprocess.run([HUBFS, "warm", str(m.path), "--hf-cache-layout", "--hf-cache-dir", str(hf_cache)],
                       capture_output=True, text=True, env=hubfs_env(), timeout=120)
    assert r.returncode == 1 and "config.json: has local changes" in r.stderr, r
    folder = hf_cache / ("models--" + repo.replace("/", "--"))
    assert not list(folder.glob("snapshots/*/config.json"))
    assert sorted(p.name for p in folder.glob("snapshots/*/*")) == [".gitattributes", "sub", "weights.bin"]
