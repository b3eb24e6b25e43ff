"""Snapshots and sharing: branches move on refresh only, open files keep their commit, the
kernel keeps pages of unchanged files, and concurrent readers of one block share one fetch."""

import os
import subprocess
import threading
import time

from conftest import HUBFS, bytes_served, wait_until


def test_refresh_moves_a_branch_but_open_files_keep_their_commit(seeded, api, mount):
    api.create_repo("alice/moving")
    api.upload_file(repo_id="alice/moving", path_or_fileobj=b"version 1\n", path_in_repo="f.txt")
    m = mount("alice/moving", args=["--refresh", "1", "--read-only"])
    f = open(m / "f.txt", "rb")
    assert f.read() == b"version 1\n"
    api.upload_file(repo_id="alice/moving", path_or_fileobj=b"version 2, longer\n", path_in_repo="f.txt")
    api.upload_file(repo_id="alice/moving", path_or_fileobj=b"new\n", path_in_repo="added.txt")
    # --refresh 1: seen within seconds; the bounds leave a loaded machine room.
    assert wait_until(lambda: os.path.exists(m / "added.txt"), 60)
    assert wait_until(lambda: (m / "f.txt").read_bytes() == b"version 2, longer\n", 60)
    f.seek(0)
    assert f.read() == b"version 1\n", "an open file keeps the commit it opened"
    f.close()


def test_without_refresh_a_branch_stays_put(seeded, api, mount):
    api.create_repo("alice/still")
    api.upload_file(repo_id="alice/still", path_or_fileobj=b"one\n", path_in_repo="f.txt")
    m = mount("alice/still")
    assert (m / "f.txt").read_bytes() == b"one\n"
    api.upload_file(repo_id="alice/still", path_or_fileobj=b"two\n", path_in_repo="f.txt")
    time.sleep(2)
    assert (m / "f.txt").read_bytes() == b"one\n"


def test_the_kernel_keeps_pages_of_a_pinned_file_across_opens(seeded, mount):
    """A pinned file is opened with keep_cache: a second open reads the kernel's pages, no FUSE
    read. This VM's kernel also pages out memory on its own (a DAMON `pageout` scheme that
    can take pages read a moment ago), so one clean pass out of three proves it; without
    keep_cache every open would drop the pages and every pass would read again."""
    m = mount("alice/tiny-model@v1.0")
    first = (m / "big.bin").read_bytes()
    extra = []
    for _ in range(3):
        reads = m.status()["read"]["reads"]
        assert (m / "big.bin").read_bytes() == first
        extra.append(m.status()["read"]["reads"] - reads)
        if extra[-1] == 0:
            break
    assert extra[-1] == 0, f"every later open read through FUSE again ({extra} reads): no keep_cache"


def read_region_concurrently(m, readers):
    start = threading.Barrier(readers)
    results = [None] * readers

    def reader(i):
        with open(m / "big.bin", "rb", buffering=0) as f:
            start.wait()
            f.seek(16 << 20)
            results[i] = f.read(4 << 20)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_readers_of_the_same_bytes_share_one_fetch(seeded, originals, mount, emulator):
    want = (originals / "tiny-model/big.bin").read_bytes()[16 << 20:20 << 20]
    before = bytes_served(emulator)
    assert read_region_concurrently(mount("alice/tiny-model", name="one"), 1) == [want]
    alone = bytes_served(emulator) - before
    before = bytes_served(emulator)
    assert read_region_concurrently(mount("alice/tiny-model", name="eight"), 8) == [want] * 8
    together = bytes_served(emulator) - before
    # Eight readers of the same bytes cost about what one costs, not eight times as much.
    assert together <= alone * 1.5, (alone, together)


def test_a_writable_branch_follows_outside_commits_while_idle(seeded, api, mount):
    api.create_repo("alice/moving-rw")
    api.upload_file(repo_id="alice/moving-rw", path_or_fileobj=b"v1\n", path_in_repo="f.txt")
    m = mount("alice/moving-rw", args=["--refresh", "1"])
    assert (m / "f.txt").read_bytes() == b"v1\n"
    api.upload_file(repo_id="alice/moving-rw", path_or_fileobj=b"from elsewhere\n", path_in_repo="other.txt")
    assert wait_until(lambda: os.path.exists(m / "other.txt"), 60)
    (m / "mine.txt").write_bytes(b"local\n")
    subprocess.run([HUBFS, "sync", str(m.path)], check=True, timeout=60)
    files = {f.rfilename for f in api.model_info("alice/moving-rw", files_metadata=True).siblings}
    assert {"f.txt", "other.txt", "mine.txt"} <= files
