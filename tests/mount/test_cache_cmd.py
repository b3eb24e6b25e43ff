"""`hubfs cache ls|rm|gc`: what the on-disk cache holds in user terms (repo, revision, path,
size, complete or partial, last use), removing a repo's files safely while a mount uses the
cache (a file the kernel reads directly from the cache is skipped, never yanked), and shrinking
the cache to a size or by age, with the bytes freed reported."""

import json
import os
import random
import subprocess
import time
import uuid
from pathlib import Path

from conftest import HUBFS, bytes_served, hubfs_env, sha, wait_until

MIB = 1 << 20
RO = ["--read-only"]


def make_repo(api, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    rng = random.Random(uuid.uuid4().int)
    (src / "config.json").write_text('{"seed": %d}\n' % rng.randrange(1 << 30))
    (src / "weights.bin").write_bytes(rng.randbytes(3 * MIB + 777))
    (src / "sub" / "notes.txt").write_bytes(rng.randbytes(5000))
    (src / "other.bin").write_bytes(rng.randbytes(2 * MIB + 5))
    repo = f"alice/cc-{uuid.uuid4().hex[:8]}"
    api.create_repo(repo)
    info = api.upload_folder(repo_id=repo, folder_path=str(src), commit_message="seed")
    return repo, src, info.oid


def drop_page_cache():
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3")


def cache(*args, check=True):
    r = subprocess.run([HUBFS, "cache", *map(str, args)], capture_output=True, text=True,
                       env=hubfs_env(), timeout=120)
    if check:
        assert r.returncode == 0, r
    return r


def listing(cache_dir):
    out = json.loads(cache("ls", "--cache-dir", cache_dir, "--json").stdout)
    files = {}
    for root in out["roots"]:
        for b in root["blobs"]:
            for ref in b["refs"]:
                files[(ref["repo"], ref["path"])] = b
    return out, files


def test_ls_names_cached_files_with_size_state_and_revision(api, mount, tmp_path):
    repo, src, commit = make_repo(api, tmp_path)
    m = mount(repo, args=RO)
    (m / "config.json").read_bytes()
    (m / "sub" / "notes.txt").read_bytes()
    with open(m / "weights.bin", "rb") as f:  # the first MiB only: partial
        f.read(MIB)
    out, files = listing(m.cache_dir)
    assert out["roots"][0]["in_use_by_pid"] == m.status()["daemon"]["pid"]
    cfg = files[(repo, "config.json")]
    assert cfg["complete"] and cfg["size"] == (src / "config.json").stat().st_size
    assert abs(cfg["last_used"] - time.time()) < 120
    assert files[(repo, "sub/notes.txt")]["complete"]
    w = files[(repo, "weights.bin")]
    assert not w["complete"] and w["size"] == 3 * MIB + 777
    assert MIB <= w["cached_bytes"] < 3 * MIB
    assert all(b["refs"][0]["commit"] == commit for b in files.values())
    assert (repo, "other.bin") not in files

    human = cache("ls", "--cache-dir", m.cache_dir).stdout
    lines = human.splitlines()
    assert lines[0].split() == ["REPO", "REVISION", "PATH", "SIZE", "CACHED", "STATE", "LAST", "USED"]
    row = next(line for line in lines if "weights.bin" in line)
    assert repo in row and "3.0 MiB" in row and "partial" in row and commit[:12] in row, human
    assert "complete" in next(line for line in lines if "config.json" in line)
    assert f"in use by hubfs pid {m.status()['daemon']['pid']}" in human, human
    # A repo filter lists only that repo.
    assert cache("ls", "--cache-dir", m.cache_dir, "alice/not-this-one").stdout.startswith("0 file(s)")


def test_rm_while_mounted_removes_a_repos_files_and_reads_still_work(api, emulator, mount, tmp_path):
    repo, src, _ = make_repo(api, tmp_path)
    m = mount(repo, args=RO)
    for name in ["config.json", "weights.bin", "other.bin"]:
        assert sha(m / name) == sha(src / name)
    used = m.status()["cache"]["used_bytes"]
    r = cache("rm", repo, "--path", "*.bin", "--cache-dir", m.cache_dir, "--json")
    report = json.loads(r.stdout)
    assert report["removed"] == 2 and report["skipped_in_use"] == 0, report
    assert report["freed_bytes"] >= 5 * MIB
    _, files = listing(m.cache_dir)
    assert set(files) == {(repo, "config.json")}
    # The daemon did it: its own accounting dropped by what was freed.
    assert m.status()["cache"]["used_bytes"] == used - report["freed_bytes"]
    drop_page_cache()  # else the kernel answers from its own copy
    before = bytes_served(emulator)
    assert sha(m / "weights.bin") == sha(src / "weights.bin")
    assert bytes_served(emulator) - before >= 3 * MIB, "removed data must be fetched again"
    # The whole repo, human output.
    out = cache("rm", repo, "--cache-dir", m.cache_dir).stdout
    assert "freed" in out and "removed" in out, out
    assert listing(m.cache_dir)[1] == {}


def test_rm_skips_a_file_the_kernel_reads_from_the_cache(api, mount, tmp_path):
    repo, src, _ = make_repo(api, tmp_path)
    m = mount(repo, args=RO)
    if not m.status()["passthrough"]["available"]:
        raise AssertionError("this kernel has FUSE passthrough (the pin is what is tested)")
    want = sha(src / "weights.bin")
    assert sha(m / "weights.bin") == want

    def opened_through():
        # The inode hubfs served stays served until the kernel forgets it with its pages.
        drop_page_cache()
        before = m.status()["passthrough"]["opens"]
        f = open(m / "weights.bin", "rb")
        if m.status()["passthrough"]["opens"] > before:
            return f
        f.close()
        return None

    held = []
    assert wait_until(lambda: held.append(opened_through()) or held[-1] is not None, 30)
    f = held[-1]
    try:
        assert m.status()["cache"]["pinned_blobs"] == 1
        r = cache("rm", repo, "--cache-dir", m.cache_dir)
        assert "skipped (in use by an open file): " + f"{repo}/weights.bin" in r.stdout, r.stdout
        assert "1 in use skipped" in r.stdout, r.stdout
        # The open file still reads right, and the blob is still listed.
        assert hashlib_sha(f) == want
        assert set(listing(m.cache_dir)[1]) == {(repo, "weights.bin")}
    finally:
        f.close()
    # The pin goes at the kernel's RELEASE, which can come a moment after close(2) returned.
    assert wait_until(lambda: m.status()["cache"]["pinned_blobs"] == 0, 30)
    r = cache("rm", repo, "--cache-dir", m.cache_dir, "--json")
    assert json.loads(r.stdout)["removed"] == 1
    assert listing(m.cache_dir)[1] == {}


def hashlib_sha(f):
    import hashlib
    f.seek(0)
    return hashlib.sha256(f.read()).hexdigest()


def test_gc_and_rm_on_a_cache_no_mount_uses(api, emulator, mount, tmp_path):
    repo, src, _ = make_repo(api, tmp_path)
    m = mount(repo, args=RO)
    for name in ["config.json", "weights.bin", "other.bin", "sub/notes.txt"]:
        assert sha(m / name) == sha(src / name)
    # weights.bin most recently used (stamps are per minute: make the order plain on disk).
    m.unmount()
    assert cache("ls", "--cache-dir", m.cache_dir, "--json") and not any(
        r["in_use_by_pid"] for r in listing(m.cache_dir)[0]["roots"])
    total = listing(m.cache_dir)[0]["roots"][0]["cached_bytes"]
    assert total >= 5 * MIB

    # Nothing is older than a day.
    r = json.loads(cache("gc", "--older-than", "1day", "--cache-dir", m.cache_dir, "--json").stdout)
    assert r["freed_bytes"] == 0
    # Down to 1 MiB: bytes freed reported, what is left fits.
    r = cache("gc", "--max-size", "1M", "--cache-dir", m.cache_dir)
    assert "freed" in r.stdout, r.stdout
    left = listing(m.cache_dir)[0]["roots"][0]["cached_bytes"]
    assert left <= MIB and left < total
    # Everything not used within the last second (i.e. all of it).
    time.sleep(2.1)  # whole seconds: last use T, cutoff now-1 > T
    r = json.loads(cache("gc", "--older-than", "1s", "--cache-dir", m.cache_dir, "--json").stdout)
    assert r["freed_bytes"] == left
    assert listing(m.cache_dir)[1] == {}
    # The blob records went with the blobs.
    assert not list((m.cache_dir / "meta" / "blobs").glob("k-*"))

    # A remount fetches again and serves the right bytes.
    m2 = mount(repo, args=RO, cache_dir=m.cache_dir, name="again")
    before = bytes_served(emulator)
    assert sha(m2 / "weights.bin") == sha(src / "weights.bin")
    assert bytes_served(emulator) - before >= 3 * MIB
    m2.unmount()
    r = cache("rm", "--all", "--cache-dir", m.cache_dir)
    assert "freed 3." in r.stdout, r.stdout
    assert listing(m.cache_dir)[1] == {}


def test_cache_commands_refuse_what_they_cannot_do(tmp_path):
    r = cache("ls", "--cache-dir", tmp_path / "nope", check=False)
    assert r.returncode == 1 and "no hubfs cache at" in r.stderr
    (tmp_path / "c").mkdir()
    r = cache("gc", "--cache-dir", tmp_path / "c", check=False)
    assert r.returncode == 1 and "--max-size" in r.stderr and "--older-than" in r.stderr
    r = cache("rm", "--cache-dir", tmp_path / "c", check=False)
    assert r.returncode == 2 and "REPO" in r.stderr
    r = cache("rm", "ns/m@main", "--cache-dir", tmp_path / "c", check=False)
    assert r.returncode == 1 and "without @REVISION" in r.stderr


def test_blobs_without_a_record_are_unknown_until_opened_again(api, emulator, mount, tmp_path):
    repo, src, _ = make_repo(api, tmp_path)
    m = mount(repo, args=RO)
    assert sha(m / "weights.bin") == sha(src / "weights.bin")
    m.unmount()
    for f in (m.cache_dir / "meta" / "blobs").iterdir():  # as an older hubfs left the cache
        f.unlink()
    human = cache("ls", "--cache-dir", m.cache_dir).stdout
    assert "(unknown)" in human and "sha256:" in human and "weights.bin" not in human, human
    m2 = mount(repo, args=RO, cache_dir=m.cache_dir, name="again")
    before = bytes_served(emulator)
    with open(m2 / "weights.bin", "rb") as f:
        f.read(10)
    assert bytes_served(emulator) == before
    _, files = listing(m.cache_dir)
    assert set(files) == {(repo, "weights.bin")}
