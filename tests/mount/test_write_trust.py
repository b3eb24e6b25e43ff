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


def test_shell_redirect_is_committed_only_after_the_command_ends(api, mount):
    repo = fresh_repo(api)
    m = mount(repo, args=["--commit-delay", "0.2"])
    p = subprocess.Popen(["sh", "-c", f"(echo start; sleep 4; echo end) > {m / 'log.txt'}"])
    try:
        time.sleep(2.5)
        assert p.poll() is None
        assert "log.txt" not in hub_files(api, repo), "nothing lands while the command writes"
        assert (m / "log.txt").read_bytes() == b"start\n", "read-your-writes meanwhile"
    finally:
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
    try:
        assert wait_until(lambda: size_of(m / "f") >= 8 * MIB, 30)
        assert p.poll() is None, "the writer is still writing at the crash"
        kill_daemon(m)
    finally:
        p.kill()
        p.wait(timeout=30)
    m2 = mount(repo, cache_dir=cache, name="c2")
    r = hub_sync(m2, timeout=60)
    files = hub_files(api, repo)
    assert "f" not in files, "no empty or partial file lands"
    assert hub_bytes(api, repo, "done.txt") == b"closed before the crash\n"
    # The flushed but unreleased version is kept staged and visible, and reported.
    assert r.returncode == 1 and "f:" in r.stderr, r.stdout + r.stderr
    assert "f" in m2.status()["writes"]["held"]
    assert os.stat(m2 / "f").st_size > 0
    os.unlink(m2 / "f")
    synced(m2)
    assert "f" not in hub_files(api, repo)


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
    m.unmount()
    m2 = mount(repo, cache_dir=cache, name="d2")
    assert (m2 / "made").is_dir() and (m2 / "hub").is_dir()
    os.rmdir(m2 / "made")
    os.rmdir(m2 / "hub")
    assert not (m2 / "made").exists() and not (m2 / "hub").exists()
    synced(m2)
    assert sorted(os.listdir(m2.path)) == [".gitattributes", "keep.txt"]
