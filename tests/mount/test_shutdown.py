"""Ending a mount never hangs: `hubfs unmount` aborts reads stalled on the Hub (EIO) and
completes; SIGTERM says at once what it waits for, and a second signal ends the wait with the
changes kept staged for the next mount."""

import os
import signal
import subprocess
import sys
import time

from conftest import HUBFS, faults, is_mounted, wait_until
from writes_lib import fresh_repo, hub_bytes, hub_files, synced, write

# Opens a file of the mount, reads it, and prints what happened: "ok <n>" or "errno <n>".
READER = """
import sys
try:
    with open(sys.argv[1], "rb") as f:
        print("opened", flush=True)
        print("ok", len(f.read(100)), flush=True)
except OSError as e:
    print("errno", e.errno, flush=True)
"""


def daemon_pid(cache):
    return int((cache / "lock").read_text().split()[0])


def test_unmount_aborts_a_read_stalled_on_the_hub(seeded, mount, emulator):
    # A stalled Hub and a long --io-timeout: only the unmount can end the read.
    m = mount("alice/tiny-model", args=["--io-timeout", "600"])
    pid = daemon_pid(m.cache_dir)
    stalled_before = emulator.stats()["faults_injected"]
    with faults(emulator, "route=content,stall=600"):
        reader = subprocess.Popen([sys.executable, "-c", READER, str(m / "model.safetensors")],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert reader.stdout.readline().strip() == "opened"
            # The read's request has reached the Hub and is held there (counted by the
            # emulator, not guessed with a sleep).
            assert wait_until(lambda: emulator.stats()["faults_injected"] > stalled_before, 60)
            assert reader.poll() is None, "the read is stalled"
            start = time.time()
            u = subprocess.run([HUBFS, "unmount", str(m.path)], capture_output=True, text=True, timeout=60)
            took = time.time() - start
            assert u.returncode == 0, u.stderr
            out, _ = reader.communicate(timeout=30)
        finally:
            reader.kill()
        assert out.strip() == "errno 5", out
        # Without the abort the read would wait out the 600 s stall (--io-timeout 600): the bound
        # only needs to tell those apart, with room for a loaded CI machine.
        assert took < 45, took
        assert not is_mounted(m.path)
        # The daemon is gone too.
        assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 30)
    assert "unmount requested: aborting Hub requests in flight" in m.log.read_text()


def test_unmount_of_a_mount_in_use_reports_busy_and_keeps_it_working(seeded, mount):
    m = mount("alice/tiny-model")
    # A process with its working directory inside: no Hub request to abort, the mount stays.
    holder = subprocess.Popen(["sleep", "60"], cwd=m.path)
    try:
        u = subprocess.run([HUBFS, "unmount", str(m.path)], capture_output=True, text=True, timeout=60)
        assert u.returncode != 0
        assert "busy" in u.stderr, u.stderr
        assert is_mounted(m.path)
        # Reads that need the Hub work again (the abort was lifted).
        assert (m / "nested/a/b/c/deep.txt").read_bytes() == b"deep file\n"
        assert len((m / "big.bin").read_bytes()) == 40 * (1 << 20) + 12345
    finally:
        holder.kill()
        holder.wait()


def test_sigterm_says_what_it_waits_for_and_a_second_one_ends_the_wait(api, mount, emulator, tmp_path):
    repo = fresh_repo(api, {"base.txt": b"base\n"})
    cache = tmp_path / "cache-term"
    m = mount(repo, cache_dir=cache, name="term1")
    pid = daemon_pid(cache)
    # The Hub accepts nothing: the commit of the change cannot land.
    with faults(emulator, "route=commit,stall=600"):
        write(m / "pending.txt", b"kept for the next mount\n")
        os.kill(pid, signal.SIGTERM)
        said = "committing 1 staged change(s) first (waiting at most 120s"
        assert wait_until(lambda: said in m.log.read_text(), 30), m.log.read_text()[-3000:]
        time.sleep(1)
        assert os.path.exists(f"/proc/{pid}"), "still waiting for the commit"
        os.kill(pid, signal.SIGTERM)
        # The wait it ends is 120 s (and the stalled commit 600 s): 45 s is room for a loaded machine.
        assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 45), "a second SIGTERM ends the wait"
        assert not is_mounted(m.path)
        log = m.log.read_text()
        assert "stopped waiting; 1 staged change(s) stay in" in log, log[-3000:]
    assert "pending.txt" not in hub_files(api, repo)
    # The next mount with this cache commits it.
    m2 = mount(repo, cache_dir=cache, name="term2")
    synced(m2)
    assert hub_bytes(api, repo, "pending.txt") == b"kept for the next mount\n"


def test_sigterm_on_a_busy_mount_detaches_it_and_the_daemon_exits_when_released(seeded, mount):
    m = mount("alice/tiny-model")
    pid = daemon_pid(m.cache_dir)
    holder = subprocess.Popen(["sleep", "60"], cwd=m.path)
    try:
        os.kill(pid, signal.SIGTERM)
        # Busy for the 5 s of patience, then detached: the mountpoint is free again.
        assert wait_until(lambda: not is_mounted(m.path), 45)
        assert "detaching it" in m.log.read_text()
    finally:
        holder.kill()
        holder.wait()
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 45)


def test_after_a_plain_umount_the_commit_wait_is_logged_and_a_signal_ends_it(api, mount, emulator, tmp_path):
    repo = fresh_repo(api, {"base.txt": b"base\n"})
    cache = tmp_path / "cache-umount"
    m = mount(repo, cache_dir=cache, args=["--commit-delay", "3600"], name="u1")
    pid = daemon_pid(cache)
    with faults(emulator, "route=commit,stall=600"):
        write(m / "pending.txt", b"kept\n")
        subprocess.run(["umount", str(m.path)], check=True)
        said = "unmounted: committing 1 staged change(s) first (waiting at most 120s"
        assert wait_until(lambda: said in m.log.read_text(), 30), m.log.read_text()[-3000:]
        assert os.path.exists(f"/proc/{pid}")
        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 45)
        assert "stopped waiting; 1 staged change(s) stay in" in m.log.read_text()
    m2 = mount(repo, cache_dir=cache, name="u2")
    synced(m2)
    assert hub_bytes(api, repo, "pending.txt") == b"kept\n"
