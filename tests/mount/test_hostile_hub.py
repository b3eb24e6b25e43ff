"""A Hub that lies (tests/mount/hostile_hub.py) cannot hang readers, blow the daemon's memory,
show names no filesystem can hold, hand out wrong bytes, or learn the token from another host.

Every tool call runs with a subprocess timeout: a hung reader is a failure, not a hung test.
The daemon's memory is read from /proc/PID/status (VmHWM: the peak, so nothing between two
samples escapes), its pid from `hubfs status --json`.
"""

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import WRITE_TOKEN, Mount, is_mounted, run_mount
from hostile_hub import GOOD, LIES, HostileHub

IO_TIMEOUT = 3
# Time a reader may take to be released: the I/O timeout plus generous scheduling slack for a
# loaded 2-core CI machine. What it tells apart is a reader held until the server gives up
# (SLOW_MAX, 30 s) or forever (run()'s own 20 s bound). Finer questions (was a request
# retried? did the kernel's retry wait the timeout again?) are answered by counting the
# server's requests, never by a tight clock.
RELEASE = IO_TIMEOUT + 12
MIB = 1 << 20


@pytest.fixture(scope="module")
def hub():
    h = HostileHub().start()
    yield h
    h.stop()


@pytest.fixture
def hmount(hub, tmp_path):
    """Factory: hmount(mode, args=[...]) -> Mount of hostile/MODE, read-only, with a token
    (so that where the token goes can be checked) and a short I/O timeout."""
    mounts = []

    def _mount(mode, args=(), io_timeout=IO_TIMEOUT):
        mp = tmp_path / f"mnt-{mode}"
        cache = tmp_path / f"cache-{mode}"
        r = run_mount(f"hostile/{mode}", mp, hub, token=WRITE_TOKEN, cache_dir=cache,
                      args=["--read-only", "--io-timeout", str(io_timeout), *args], timeout=30)
        assert r.returncode == 0, f"mount failed: {r.stderr}"
        assert is_mounted(mp)
        m = Mount(mp, cache / "hubfs.log", cache)
        mounts.append(m)
        return m

    yield _mount
    for m in mounts:
        m.unmount()


def run(cmd, timeout=20):
    """Runs a tool; returns (completed process, seconds taken). A hang fails the test (and
    the test does not wait for a reader stuck in the kernel)."""
    start = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            p.communicate(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        raise AssertionError(f"{cmd} still running after {timeout} s")
    return subprocess.CompletedProcess(cmd, p.returncode, out, err), time.time() - start


def daemon_kib(m, field="VmHWM"):
    pid = m.status()["pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def assert_eio(r, what):
    assert r.returncode != 0, f"{what} succeeded: {r.stdout[:200]!r}"
    assert b"Input/output error" in r.stderr, f"{what}: {r.stderr!r}"


def test_looping_pagination_is_an_error_not_a_hang(hub, hmount):
    m = hmount("loop")
    r, took = run(["ls", str(m.path)])
    assert_eio(r, "ls of a listing whose pages loop")
    assert took < RELEASE, took
    # Two listings (the directory and the recursive one) see the loop on their 4th page.
    assert hub.state.tree_pages["loop"] <= 8, hub.state.tree_pages
    assert "pagination loops" in m.log.read_text()


def test_endless_pagination_is_bounded_in_time_and_memory(hub, hmount):
    budget = 100_000
    m = hmount("endless", args=["--max-entries", str(budget)])
    for tool in (["ls", str(m.path)], ["find", str(m.path)], ["stat", str(m.path / "nope")]):
        r, took = run(tool)
        assert r.returncode != 0, tool
        assert took < RELEASE, (tool, took)
    # The background listing of the whole tree stops at the entry budget.
    log = m.log
    deadline = time.time() + 60
    while f"budget of {budget} entries" not in log.read_text() and time.time() < deadline:
        time.sleep(0.2)
    assert f"budget of {budget} entries" in log.read_text()
    time.sleep(1)
    pages = hub.state.tree_pages["endless"]
    time.sleep(2)
    assert hub.state.tree_pages["endless"] - pages <= 3, "the listing goes on"
    # 100 000 entries of ~60-byte names: well under 200 MiB (it was 2.9 GB after 40 s).
    assert daemon_kib(m) < 200 * 1024, daemon_kib(m)


def test_huge_bodies_are_refused_not_buffered(hub, hmount, tmp_path):
    m = hmount("bigpage")
    r, took = run(["ls", str(m.path)])
    assert_eio(r, "ls of a 400 MiB tree page")
    assert took < RELEASE, took
    # Two listings may each hold up to one page cap (32 MiB) at once.
    assert daemon_kib(m) < 160 * 1024, daemon_kib(m)
    assert "bytes allowed for this request" in m.log.read_text()

    # A repo info of 400 MiB: the mount fails at once, with the reason.
    start = time.time()
    r = run_mount("hostile/biginfo", tmp_path / "mnt-biginfo", hub, token=WRITE_TOKEN,
                  cache_dir=tmp_path / "cache-biginfo", args=["--read-only"], timeout=30)
    assert r.returncode == 1
    assert "bytes allowed for this request" in r.stderr, r.stderr
    assert time.time() - start < RELEASE
    assert not is_mounted(tmp_path / "mnt-biginfo")


def test_hostile_names_are_never_listed(hub, hmount, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    m = hmount("names")
    before = sorted(os.listdir(tmp_path))

    r, _ = run(["ls", "-a", str(m.path)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n")[:-1] == [".", "..", "good-dir", "ok.txt"]
    r, _ = run(["ls", "-a", str(m.path / "good-dir")])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n")[:-1] == [".", "..", "inner.txt"]
    r, _ = run(["find", str(m.path)])
    assert r.returncode == 0, r.stderr
    found = sorted(Path(p).relative_to(m.path).as_posix() for p in r.stdout.decode().split("\n")[:-1])
    assert found == [".", "good-dir", "good-dir/inner.txt", "ok.txt"]
    # Every listed name can be stat'ed; the hostile ones cannot be reached.
    for name in ["ok.txt", "good-dir", "good-dir/inner.txt"]:
        r, _ = run(["stat", str(m.path / name)])
        assert r.returncode == 0, (name, r.stderr)
    for name in [".git", "elsewhere.txt", "d", "x" * 300, "..\\up", "not-asked.txt"]:
        r, _ = run(["stat", str(m.path / name)])
        assert r.returncode != 0, name
    assert (m.path / "ok.txt").read_bytes() == GOOD
    # The siblings' `../../etc/passwd` went nowhere, and nothing outside changed.
    assert sorted(os.listdir(tmp_path)) == before
    assert sorted(os.listdir(outside)) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "mine"
    st = m.status()
    assert st["hub"]["invalid_entries"] >= 10, st["hub"]
    assert "cannot be shown" in m.log.read_text()


def test_lying_sizes_and_hashes_never_give_wrong_bytes(hub, hmount, tmp_path):
    m = hmount("lies")
    for name in LIES:
        r, took = run(["cat", str(m.path / name)])
        assert_eio(r, f"cat {name}")
        assert took < RELEASE, (name, took)
        copy = tmp_path / f"copy-{name}"
        r, _ = run(["cp", str(m.path / name), str(copy)])
        assert_eio(r, f"cp {name}")
    log = m.log.read_text()
    assert "does not match its content hash" in log
    assert "body ended" in log


def test_redirects_to_other_schemes_fail_at_once_and_the_token_stays_home(hub, hmount):
    m = hmount("redirect")
    for name in ["to-file.bin", "to-ftp.bin"]:
        r, took = run(["cat", str(m.path / name)])
        assert_eio(r, f"cat {name}")
        assert took < RELEASE, (name, took)
        # Not retried (it was, for 6 s, before): one resolve for each read the kernel makes
        # (the failed readahead, then its retry of the one page), never a retry loop's four.
        assert hub.state.resolves[("redirect", name)] <= 2, hub.state.resolves
    log = m.log.read_text()
    assert "redirect to a file:// URL refused" in log
    assert "redirect to a ftp:// URL refused" in log
    # A redirect to another host is followed, without the token.
    r, _ = run(["cat", str(m.path / "to-other-host.txt")])
    assert r.returncode == 0, r.stderr
    assert r.stdout == GOOD
    assert hub.state.other_host_requests >= 1
    assert hub.state.other_host_auth == []


def test_a_silent_server_releases_readers_within_the_io_timeout(hub, hmount):
    m = hmount("slow")
    r, took = run(["ls", str(m.path)])
    assert_eio(r, "ls")
    assert took < RELEASE, took
    # The kernel retries a failed read through the page cache at once: that retry must not
    # wait the I/O timeout again (it did: 6 s with a 3 s timeout). Counted, not timed: the
    # retry fails from hubfs' memory of the stall, without a second request to the server.
    r, took = run(["cat", str(m.path / "stalled.bin")])
    assert_eio(r, "cat")
    assert took < RELEASE, took
    assert hub.state.resolves[("slow", "stalled.bin")] == 1, hub.state.resolves



def test_a_huge_directory_fits_the_documented_memory_budget(hub, hmount):
    # 200 000 files in one directory (real, if unusual): listed in full, at ~200 bytes an
    # entry in the index (SEMANTICS.md "Trusting the Hub"), plus what `ls` itself costs the
    # daemon (its readdirplus lookups). Before the compact index: 300+ MB at the peak.
    m = hmount("bigdir-200", io_timeout=60)
    r, took = run(["ls", str(m.path)], timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split(b"\n")) - 1 == 200_000
    peak = daemon_kib(m)
    print(f"daemon peak RSS {peak} KiB, ls took {took:.1f} s")
    assert peak < 150 * 1024, peak
