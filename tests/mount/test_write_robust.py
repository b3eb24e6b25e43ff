"""Writable mounts under stress: outside commits (auto-retry and conflicts), kill -9 and
remount, injected upload/commit faults, pull requests, read-only tokens, multipart uploads."""

import os
import signal
import subprocess
import time

import pytest

from conftest import OTHER_TOKEN, READ_TOKEN, Emulator, run_mount, is_mounted, wait_until, HUBFS
from seed import det_bytes
from writes_lib import commits, fresh_repo, hub_bytes, hub_files, hub_sync, synced, write

MIB = 1 << 20


def outside_commit(api, repo, path, data):
    from huggingface_hub import CommitOperationAdd
    api.create_commit(repo, operations=[CommitOperationAdd(path_in_repo=path, path_or_fileobj=data)],
                      commit_message=f"outside {path}")


def test_outside_commit_to_another_path_is_kept(api, mount):
    repo = fresh_repo(api, {"mine.txt": b"v1", "theirs.txt": b"t1"})
    m = mount(repo, args=["--commit-delay", "2"])
    write(m / "mine.txt", b"v2")
    outside_commit(api, repo, "theirs.txt", b"t2")
    synced(m)
    assert hub_bytes(api, repo, "mine.txt") == b"v2"
    assert hub_bytes(api, repo, "theirs.txt") == b"t2", "the outside commit survives"


def test_outside_commit_to_the_same_path_is_a_conflict(api, mount):
    repo = fresh_repo(api, {"shared.txt": b"base"})
    m = mount(repo, args=["--commit-delay", "2"])
    write(m / "shared.txt", b"local edit")
    write(m / "other.txt", b"unrelated")
    outside_commit(api, repo, "shared.txt", b"remote edit")
    r = hub_sync(m, timeout=60)
    assert r.returncode != 0
    assert "shared.txt" in r.stderr and "conflict" in r.stderr
    assert hub_bytes(api, repo, "shared.txt") == b"remote edit", "nothing overwritten"
    assert hub_bytes(api, repo, "other.txt") == b"unrelated", "the rest landed"
    assert (m / "shared.txt").read_bytes() == b"local edit", "the local version is kept"
    conflicts = m.status()["writes"]["commit"]["conflicts"]
    assert "shared.txt" in conflicts and conflicts["shared.txt"]["head"]
    out = subprocess.run([HUBFS, "status", str(m.path)], capture_output=True, text=True, timeout=20)
    assert "conflict:    shared.txt" in out.stdout


def test_kill_9_after_close_then_remount_lands(api, mount, emulator, tmp_path):
    repo = fresh_repo(api)
    cache = tmp_path / "cache-k9"
    m = mount(repo, cache_dir=cache, args=["--commit-delay", "3600"], name="k9a")
    write(m / "survivor.txt", b"written before the crash\n")
    write(m / "big.bin", det_bytes(3 * MIB, 9))
    pid = int((cache / "lock").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10)
    subprocess.run(["umount", "-l", str(m.path)], capture_output=True)
    assert "survivor.txt" not in hub_files(api, repo)
    m2 = mount(repo, cache_dir=cache, name="k9b")
    synced(m2)
    assert hub_bytes(api, repo, "survivor.txt") == b"written before the crash\n"
    assert hub_bytes(api, repo, "big.bin") == det_bytes(3 * MIB, 9)
    n = len(commits(api, repo))
    synced(m2)
    assert len(commits(api, repo)) == n, "nothing is committed twice"


def test_faults_during_upload_and_commit_are_retried(api, mount, emulator):
    repo = fresh_repo(api)
    # LFS uploads (`--no-xet`): the faults hit LFS PUTs; Xet uploads under CAS faults are
    # test_xet_write's.
    m = mount(repo, args=["--no-xet"])
    big = det_bytes(11 * MIB, 4)
    emulator.set_faults("route=upload,times=2,status=503", "route=commit,times=1,status=500",
                        "route=commit,times=1,after=1,cut-after=0")
    try:
        write(m / "lfs.bin", big)
        write(m / "small.txt", b"small")
        synced(m, timeout=180)
    finally:
        emulator.clear_faults()
    assert hub_bytes(api, repo, "lfs.bin") == big
    assert hub_bytes(api, repo, "small.txt") == b"small"
    assert emulator.stats()["faults_injected"] >= 4
    titles = [c.title for c in commits(api, repo)]
    assert sum(t.endswith("via hubfs") for t in titles) == 1, titles


def test_create_pr(api, mount):
    repo = fresh_repo(api, {"README.md": b"# base\n"})
    # carol may not write to alice's branch, but may open a pull request.
    m = mount(repo, token=OTHER_TOKEN, args=["--create-pr"])
    write(m / "proposal.txt", b"please merge\n")
    synced(m)
    write(m / "second.txt", b"more\n")
    synced(m)
    assert "proposal.txt" not in hub_files(api, repo), "main is untouched"
    refs = api.list_repo_refs(repo, include_pull_requests=True)
    prs = [r.ref for r in refs.pull_requests]
    assert len(prs) == 1, prs
    pr_files = hub_files(api, repo, revision=prs[0])
    assert "proposal.txt" in pr_files and "second.txt" in pr_files
    assert m.status()["writes"]["commit"]["revision"] == prs[0]


def test_read_only_token_mounts_read_only(api, emulator, tmp_path):
    repo = fresh_repo(api, {"f.txt": b"f"})
    mp = tmp_path / "ro"
    r = run_mount(repo, mp, emulator, token=READ_TOKEN, cache_dir=tmp_path / "c")
    try:
        assert r.returncode == 0, r.stderr
        assert "read-only" in r.stderr
        with pytest.raises(OSError) as e:
            write(mp / "new.txt", b"x")
        assert e.value.errno == 30  # EROFS
        assert (mp / "f.txt").read_bytes() == b"f"
    finally:
        subprocess.run([HUBFS, "unmount", str(mp)], capture_output=True, timeout=60)


def test_tag_mount_is_read_only(api, mount):
    repo = fresh_repo(api, {"f.txt": b"f"})
    api.create_tag(repo, tag="v1")
    m = mount(f"{repo}@v1")
    with pytest.raises(OSError) as e:
        write(m / "x.txt", b"x")
    assert e.value.errno == 30


@pytest.fixture
def multipart_emulator(tmp_path):
    data = tmp_path / "emu-mp"
    data.mkdir()
    emu = Emulator(data, ["--multipart-threshold", "8M", "--multipart-part-size", "5M"]).start()
    yield emu
    emu.stop()


def test_multipart_upload_of_a_large_file(multipart_emulator, tmp_path, workdir):
    from conftest import WRITE_TOKEN, client_env
    client_env(workdir)
    from huggingface_hub import HfApi
    api = HfApi(endpoint=multipart_emulator.url, token=WRITE_TOKEN)
    repo = fresh_repo(api)
    mp = tmp_path / "mp"
    # Multipart is an LFS transfer: `--no-xet`, or the file would go to the CAS.
    r = run_mount(repo, mp, multipart_emulator, token=WRITE_TOKEN, cache_dir=tmp_path / "c", args=["--no-xet"])
    assert r.returncode == 0, r.stderr
    try:
        data = det_bytes(23 * MIB, 5)
        write(mp / "large.bin", data)
        r = subprocess.run([HUBFS, "sync", str(mp)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert hub_bytes(api, repo, "large.bin") == data
        stats = multipart_emulator.stats()
        assert stats["lfs_bytes_uploaded"] >= len(data)
        # 23 MiB in 5 MiB parts: five part PUTs and the completion.
        assert stats["upload_requests"] >= 6, stats
    finally:
        subprocess.run([HUBFS, "unmount", str(mp)], capture_output=True, timeout=60)
        wait_until(lambda: not is_mounted(mp), 10)
