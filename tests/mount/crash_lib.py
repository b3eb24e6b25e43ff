"""Killing a hubfs daemon the hard way (kill -9) for the crash and model rigs."""

import os
import signal
import subprocess
from pathlib import Path

from conftest import wait_until


def daemon_pid(mountpoint: Path) -> int:
    """The pid of the hubfs daemon serving `mountpoint`: the process whose command line is
    `hubfs mount ... MOUNTPOINT ...`."""
    target = str(mountpoint)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            argv = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if len(args) > 2 and os.path.basename(args[0]) == "hubfs" and "mount" in args and target in args:
            return int(d)
    raise AssertionError(f"no hubfs daemon serves {mountpoint}")


def dead(pid: int) -> bool:
    """Gone, or a zombie whose threads have all exited. A multi-threaded process's leader turns
    zombie before its other threads finish exiting, and those still hold its files (the staging
    area's flock among them): until they are gone, a new mount would find the area busy."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            return False
        return os.listdir(f"/proc/{pid}/task") == [str(pid)]
    except (FileNotFoundError, ProcessLookupError):
        return True
    except OSError:
        return False


def kill_daemon(mountpoint: Path, pid: int = None, writers=()):
    """kill -9 of the daemon of `mountpoint`, then a lazy unmount of the dead mount.

    `writers` (Popen objects working in the mount) are killed right after the daemon and
    before the unmount: once unmounted, the mountpoint is a plain local directory, and a
    writer still running would "succeed" at writing there."""
    pid = pid or daemon_pid(mountpoint)
    os.kill(pid, signal.SIGKILL)
    for w in writers:
        w.kill()
    for w in writers:
        w.wait(20)
    assert wait_until(lambda: dead(pid), 20), f"hubfs daemon {pid} still alive 20 s after SIGKILL"
    subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)
