"""The write path never commits a cut-off, premature or wrong file: failed writes poison their
version (never committed, reported by `hubfs status`/`sync`), a version is queued only when
its last writer is released, directory renames right after a commit move everything, open
files survive their unlink, sparse files stay sparse, directories stay until rmdir."""

import errno
import os
import signal
import subprocess
import time

import pytest

from conftest import HUBFS, is_mounted, wait_until
from writes_lib import fresh_repo, hub_bytes, hub_files, hub_sync, synced, write

MIB = 1 << 20


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs for the cache directory (request it before `mount`, so that it is
    unmounted after the hubfs mounts)."""
    d = tmp_path / "small-cache"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(d)], check=True)
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill_until_enospc(path, limit=200 * MIB):
    """Writes 1 MiB chunks to a new file until the disk is full; returns the open fd and the
    bytes written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    chunk = os.urandom(MIB)
    done = 0
    with pytest.raises(OSError) as e:
        while done < limit:
            done += os.write(fd, chunk)
    assert e.value.errno == errno.ENOSPC, e.value
    return fd, done


def status_text(m):
    r = subprocess.run([HUBFS, "status", str(m.path)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


def daemon_pid(cache):
    return int((cache / "lock").read_text().split()[0])


def size_of(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def unmount_and_wait(m):
    """Unmounts and waits for the daemon to exit (its staging area lock goes with it)."""
    pid = daemon_pid(m.cache_dir)
    m.unmount()
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 30)


def kill_daemon(m):
    pid = daemon_pid(m.cache_dir)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10)
    subprocess.run(["umount", "-l", str(m.path)], capture_output=True)
    wait_until(lambda: not is_mounted(m.path), 10)


def test_full_cache_disk_never_commits_a_cut_off_file(api, small_disk, mount):
    repo = fresh_repo(api, {"keep.txt": b"k"})
    # The daemon's log is on the full disk too: it must survive that.
    m = mount(repo, cache_dir=small_disk)
    write(m / "before.txt", b"written before the disk filled\n")
    fd, done = fill_until_enospc(m / "big.bin")
    assert 32 * MIB < done < 64 * MIB
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno in (errno.ENOSPC, errno.EIO), "close reports the failed write"
    r = hub_sync(m, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "big.bin" in r.stderr and "failed" in r.stderr
    assert "big.bin" in m.status()["writes"]["held"]
    assert "not landing: big.bin" in status_text(m)
    files = hub_files(api, repo)
    assert "big.bin" not in files, "a cut-off file never lands"
    assert hub_bytes(api, repo, "before.txt") == b"written before the disk filled\n"
    # Writing it again from the start clears the state (and frees the disk).
    write(m / "big.bin", b"small now")
    synced(m)
    assert hub_bytes(api, repo, "big.bin") == b"small now"
    assert "big.bin" not in m.status()["writes"]["held"]
    # Deleting a poisoned file clears the state too; nothing else is lost.
    fd, _ = fill_until_enospc(m / "big2.bin")
    with pytest.raises(OSError):
        os.close(fd)
    assert hub_sync(m, timeout=60).returncode == 1
    os.unlink(m / "big2.bin")
    write(m / "after.txt", b"after")
    synced(m)
    files = hub_files(api, repo)
    assert "big2.bin" not in files
    assert hub_bytes(api, repo, "after.txt") == b"after"
    assert hub_bytes(api, repo, "big.bin") == b"small now"


def test_shell_redirect_is_committed_only_after_the_command_ends(api, mount, tmp_path):
    repo = fresh_repo(api)
    m = mount(repo, args=["--commit-delay", "0.2"])
    # The command goes on only when the test says so (a line on a fifo), not after a sleep that
    # a loaded machine can outlast.
    go = tmp_path / "go"
    os.mkfifo(go)
    p = subprocess.Popen(["sh", "-c", f"(echo start; read line < {go}; echo end) > {m / 'log.txt'}"])
    try:
        assert wait_until(lambda: size_of(m / "log.txt") > 0, 30), "the command never wrote"
        # Ten quiet periods (0.2 s): had the first close queued a version, it would be committed.
        time.sleep(2)
        assert p.poll() is None
        assert "log.txt" not in hub_files(api, repo), "nothing lands while the command writes"
        assert (m / "log.txt").read_bytes() == b"start\n", "read-your-writes meanwhile"
    finally:
        if p.poll() is None:
            # O_RDWR: never blocks, whether or not the shell has the fifo open yet.
            fd = os.open(go, os.O_RDWR)
            os.write(fd, b"go\n")
            p.wait(timeout=30)
            os.close(fd)
        p.wait(timeout=30)
    synced(m)
    assert hub_bytes(api, repo, "log.txt") == b"start\nend\n"


def test_kill_9_while_a_redirect_writes_lands_nothing_partial(api, mount, tmp_path):
    repo = fresh_repo(api)
    cache = tmp_path / "cache-crash"
    m = mount(repo, cache_dir=cache, args=["--commit-delay", "3600"], name="c1")
    write(m / "done.txt", b"closed before the crash\n")
    p = subprocess.Popen(["sh", "-c", f"head -c 1G /dev/zero > {m / 'f'}"],
                         stderr=subprocess.DEVNULL)
    # A subshell whose first command has exited (its inherited descriptor closed) while the
    # subshell still holds the file for the next one.
    q = subprocess.Popen(["sh", "-c", f"(echo start; sleep 0.2; sleep 60; echo end) > {m / 'log'}"],
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(lambda: size_of(m / "f") >= 8 * MIB, 30)
        time.sleep(1)
        assert p.poll() is None, "the writer is still writing at the crash"
        assert q.poll() is None
        kill_daemon(m)
    finally:
        p.kill()
        p.wait(timeout=30)
        os.killpg(q.pid, signal.SIGKILL)
        q.wait(timeout=30)
    m2 = mount(repo, cache_dir=cache, name="c2")
    r = hub_sync(m2, timeout=60)
    files = hub_files(api, repo)
    assert "f" not in files and "log" not in files, "no empty or partial file lands"
    assert hub_bytes(api, repo, "done.txt") == b"closed before the crash\n"
    # The flushed but unreleased version is kept staged and visible, and reported.
    assert r.returncode == 1 and "f:" in r.stderr, r.stdout + r.stderr
    assert "f" in m2.status()["writes"]["held"] and "log" in m2.status()["writes"]["held"]
    assert os.stat(m2 / "f").st_size > 0
    os.unlink(m2 / "f")
    write(m2 / "log", b"rewritten\n")
    synced(m2)
    assert "f" not in hub_files(api, repo)
    assert hub_bytes(api, repo, "log") == b"rewritten\n"


def test_directory_rename_right_after_a_commit_moves_everything(api, mount):
    repo = fresh_repo(api)
    m = mount(repo, args=["--commit-delay", "0.2"])
    os.mkdir(m / "dd")
    for i in range(300):
        write(m / f"dd/f{i}.txt", b"%d" % i)
    synced(m)
    os.rename(m / "dd", m / "ee")
    synced(m)
    files = hub_files(api, repo)
    assert [f for f in files if f.startswith("dd/")] == [], "nothing is left behind"
    assert len([f for f in files if f.startswith("ee/")]) == 300
    for r in range(6):
        src, dst = f"d{r}", f"e{r}"
        os.mkdir(m / src)
        for i in range(150):
            write(m / f"{src}/f{i}.txt", b"%d" % i)
        synced(m)
        os.rename(m / src, m / dst)
        synced(m)
        assert len(os.listdir(m / dst)) == 150, f"round {r}: the listing is whole after sync"
        assert not (m / src).exists()
    files = hub_files(api, repo)
    for r in range(6):
        assert len([f for f in files if f.startswith(f"e{r}/")]) == 150, r
        assert [f for f in files if f.startswith(f"d{r}/")] == [], r


def test_a_directory_stays_until_rmdir_after_its_last_file_is_deleted(api, mount, tmp_path):
    repo = fresh_repo(api, {"hub/only.txt": b"h", "keep.txt": b"k"})
    cache = tmp_path / "cache-dirs"
    m = mount(repo, cache_dir=cache, args=["--commit-delay", "0.2"], name="d1")
    os.mkdir(m / "made")
    write(m / "made/f.txt", b"f")
    synced(m)
    assert "made/f.txt" in hub_files(api, repo)
    os.unlink(m / "made/f.txt")
    os.unlink(m / "hub/only.txt")
    synced(m)
    files = hub_files(api, repo)
    assert "made/f.txt" not in files and "hub/only.txt" not in files
    assert (m / "made").is_dir() and (m / "hub").is_dir(), "directories stay until rmdir"
    assert os.listdir(m / "made") == [] and os.listdir(m / "hub") == []
    # They are local now: they survive a remount, and go with rmdir.
    unmount_and_wait(m)
    m2 = mount(repo, cache_dir=cache, name="d2")
    assert (m2 / "made").is_dir() and (m2 / "hub").is_dir()
    os.rmdir(m2 / "made")
    os.rmdir(m2 / "hub")
    assert not (m2 / "made").exists() and not (m2 / "hub").exists()
    synced(m2)
    assert sorted(os.listdir(m2.path)) == [".gitattributes", "keep.txt"]


def test_open_files_keep_working_after_unlink(api, mount):
    repo = fresh_repo(api, {"hub.txt": b"hub content\n", "sh.txt": b"for the shell\n"})
    m = mount(repo, args=["--commit-delay", "0.2"])
    out = subprocess.run(["sh", "-c", f"exec 4<{m / 'sh.txt'}; rm {m / 'sh.txt'}; cat <&4"],
                         capture_output=True, timeout=30)
    assert out.returncode == 0 and out.stdout == b"for the shell\n", out
    # A Hub file, open for reading: its bytes at its version, also once the deletion landed.
    hub_fd = os.open(m / "hub.txt", os.O_RDONLY)
    # A staged file, open for reading.
    write(m / "staged.txt", b"staged bytes")
    st_fd = os.open(m / "staged.txt", os.O_RDONLY)
    # A file open for writing: writes go to an orphan that never lands.
    w_fd = os.open(m / "w.txt", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(w_fd, b"abc")
    try:
        os.unlink(m / "hub.txt")
        os.unlink(m / "staged.txt")
        os.unlink(m / "w.txt")
        write(m / "w.txt", b"the new one")
        assert os.fstat(hub_fd).st_size == len(b"hub content\n")
        assert os.fstat(hub_fd).st_nlink == 0, "no name leads to it"
        assert os.pread(hub_fd, 100, 0) == b"hub content\n"
        assert os.fstat(st_fd).st_size == len(b"staged bytes")
        assert os.pread(st_fd, 100, 0) == b"staged bytes"
        os.write(w_fd, b"def")
        os.ftruncate(w_fd, 5)
        assert os.fstat(w_fd).st_size == 5
        assert os.pread(w_fd, 100, 0) == b"abcde"
        assert os.fstat(w_fd).st_ino != os.stat(m / "w.txt").st_ino
        synced(m)
        assert os.pread(hub_fd, 100, 0) == b"hub content\n"
        assert os.fstat(hub_fd).st_size == len(b"hub content\n")
    finally:
        os.close(hub_fd)
        os.close(st_fd)
        os.close(w_fd)
    synced(m)
    files = hub_files(api, repo)
    assert "hub.txt" not in files and "staged.txt" not in files and "sh.txt" not in files
    assert hub_bytes(api, repo, "w.txt") == b"the new one", "the orphan never lands"


def test_mkdir_over_an_unlinked_file_survives_kill_9(api, mount, tmp_path):
    repo = fresh_repo(api)
    cache = tmp_path / "cache-r2"
    m = mount(repo, cache_dir=cache, args=["--commit-delay", "3600"], name="r2a")
    write(m / "a", b"")
    os.unlink(m / "a")
    os.mkdir(m / "a")
    kill_daemon(m)
    m2 = mount(repo, cache_dir=cache, name="r2b")
    assert (m2 / "a").is_dir()


def disk_used(path):
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], capture_output=True,
                         text=True, timeout=30)
    return int(out.stdout.split()[0])


def test_sparse_files_stay_sparse(api, small_disk, mount):
    import hashlib
    repo = fresh_repo(api)
    m = mount(repo, cache_dir=small_disk)
    size = 1 << 30
    subprocess.run(["truncate", "-s", str(size), str(m / "sparse.bin")], check=True)
    # Reopening the queued version (copy-on-write) and writing a few bytes at its end.
    with open(m / "sparse.bin", "r+b") as f:
        f.seek(size - 3)
        f.write(b"end")
    with open(m / "sparse.bin", "ab") as f:
        f.write(b"!")
    assert os.stat(m / "sparse.bin").st_size == size + 1
    assert disk_used(small_disk) < 16 * MIB, "staging stays sparse"
    synced(m, timeout=300)
    h = hashlib.sha256()
    zeros = bytes(MIB)
    for _ in range(size // MIB - 1):
        h.update(zeros)
    h.update(bytes(MIB - 3) + b"end!")
    info = api.get_paths_info(repo, ["sparse.bin"])[0]
    assert info.size == size + 1
    assert info.lfs is not None and info.lfs.sha256 == h.hexdigest(), "lands byte-exact"
    assert disk_used(small_disk) < 16 * MIB


def test_staged_files_in_a_new_directory_survive_kill_9(api, mount, tmp_path):
    repo = fresh_repo(api)
    cache = tmp_path / "cache-r3"
    m = mount(repo, cache_dir=cache, args=["--commit-delay", "3600"], name="r3a")
    os.mkdir(m / "b")
    write(m / "b/a", b"")
    os.makedirs(m / "a/a")
    write(m / "a/b", b"ab")
    kill_daemon(m)
    m2 = mount(repo, cache_dir=cache, args=["--commit-delay", "3600"], name="r3b")
    assert os.listdir(m2 / "b") == ["a"]
    assert (m2 / "b/a").read_bytes() == b""
    assert not (m2 / "b/zzz").exists()
    assert sorted(os.listdir(m2 / "a")) == ["a", "b"]
    assert (m2 / "a/a").is_dir()
    synced(m2)
    assert (m2 / "a/a").is_dir(), "a local directory beside a landed file stays"
    assert sorted(hub_files(api, repo)) == [".gitattributes", "a/b", "b/a"]


def test_a_new_directory_stays_when_its_last_staged_file_goes_after_kill_9(api, mount, tmp_path):
    repo = fresh_repo(api)
    cache = tmp_path / "cache-r4"
    m = mount(repo, cache_dir=cache, args=["--commit-delay", "3600"], name="r4a")
    os.mkdir(m / "a")
    write(m / "a/a", b"")
    os.makedirs(m / "p/d")
    write(m / "p/d/f", b"f")
    kill_daemon(m)
    m2 = mount(repo, cache_dir=cache, args=["--commit-delay", "3600"], name="r4b")
    os.unlink(m2 / "a/a")
    assert (m2 / "a").is_dir() and os.listdir(m2 / "a") == []
    os.rename(m2 / "p/d", m2 / "q")
    assert (m2 / "p").is_dir() and os.listdir(m2 / "p") == []
    assert os.listdir(m2 / "q") == ["f"]
    unmount_and_wait(m2)
    m3 = mount(repo, cache_dir=cache, name="r4c")
    assert (m3 / "a").is_dir() and (m3 / "p").is_dir()
    synced(m3)
    assert sorted(hub_files(api, repo)) == [".gitattributes", "q/f"]


def test_a_commit_that_landed_before_a_crash_is_not_a_conflict(api, mount, tmp_path):
    """The daemon dies after its commit landed but before it journaled it: after remount the
    branch has moved (by that very commit); paths that already hold the staged content are
    not conflicts."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from seed import det_bytes
    repo = fresh_repo(api, {"gone.txt": b"g", "other.txt": b"o"})
    cache = tmp_path / "cache-landed"
    m = mount(repo, cache_dir=cache, args=["--commit-delay", "3600"], name="l1")
    big = det_bytes(12 * MIB, 7)
    write(m / "small.txt", b"small content\n")
    write(m / "big.bin", big)
    os.unlink(m / "gone.txt")
    time.sleep(0.5)
    kill_daemon(m)
    # What the lost commit did (the same bytes), plus an unrelated outside change.
    api.create_commit(repo, operations=[
        CommitOperationAdd(path_in_repo="small.txt", path_or_fileobj=b"small content\n"),
        CommitOperationAdd(path_in_repo="big.bin", path_or_fileobj=big),
        CommitOperationDelete(path_in_repo="gone.txt"),
        CommitOperationAdd(path_in_repo="other.txt", path_or_fileobj=b"outside"),
    ], commit_message="the commit the daemon did not journal")
    m2 = mount(repo, cache_dir=cache, name="l2")
    synced(m2)
    files = hub_files(api, repo)
    assert "gone.txt" not in files
    assert hub_bytes(api, repo, "small.txt") == b"small content\n"
    assert hub_bytes(api, repo, "big.bin") == big
    assert hub_bytes(api, repo, "other.txt") == b"outside"
    assert m2.status()["writes"]["commit"]["conflicts"] == {}


def test_a_mkdir_d_directory_stays_after_its_file_is_unlinked_and_kill_9(api, mount, tmp_path):
    repo = fresh_repo(api)
    cache = tmp_path / "cache-r5"
    m = mount(repo, cache_dir=cache, args=["--commit-delay", "3600"], name="r5a")
    os.mkdir(m / "a")
    write(m / "a/a", b"")
    os.unlink(m / "a/a")
    kill_daemon(m)
    m2 = mount(repo, cache_dir=cache, name="r5b")
    assert (m2 / "a").is_dir() and os.listdir(m2 / "a") == []


def test_a_file_replaces_a_directory_moved_away_in_the_same_commit(api, mount):
    repo = fresh_repo(api, {"a/a": b"in a dir"})
    m = mount(repo, args=["--commit-delay", "1"])
    os.rename(m / "a", m / "b")
    write(m / "a", b"now a file")
    synced(m)
    assert hub_bytes(api, repo, "a") == b"now a file"
    assert hub_bytes(api, repo, "b/a") == b"in a dir"


def test_a_directory_made_over_a_deleted_file_hides_it_when_removed_or_renamed(api, mount):
    repo = fresh_repo(api, {"b": b"landed b", "c": b"landed c"})
    m = mount(repo)
    os.unlink(m / "b")
    os.mkdir(m / "b")
    os.rename(m / "b", m / "a")
    os.unlink(m / "c")
    os.mkdir(m / "c")
    os.rmdir(m / "c")
    assert sorted(os.listdir(m.path)) == [".gitattributes", "a"]
    synced(m)
    assert sorted(os.listdir(m.path)) == [".gitattributes", "a"]
    assert (m / "a").is_dir()
    assert hub_files(api, repo) == [".gitattributes"]
