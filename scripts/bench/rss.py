"""Peak resident memory and CPU time of a process during a workload, sampled from /proc.

VmRSS is read every 25 ms by a background thread (a daemon's RSS moves slowly against that),
and utime+stime at the start and the end give the CPU seconds the process spent."""

import os
import threading

from .util import MIB

INTERVAL_S = 0.025
_TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_seconds() -> float | None:
    """CPU-seconds the whole machine spent busy (all CPUs; not idle, not waiting for I/O)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    # guest time is already counted in user and nice.
    return (sum(ticks[:8]) - idle) / _TICKS


class Sampler:
    """`with Sampler(pid) as s: ...` then `s.peak_mib`, `s.cpu_s`."""

    def __init__(self, pid: int | None):
        self.pid = pid
        self.peak = 0
        self.cpu_s = None
        self._cpu0 = None
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if self.pid is None:
            return self
        self._cpu0 = cpu_seconds(self.pid)
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        r = rss_bytes(self.pid)
        if r is not None and r > self.peak:
            self.peak = r

    def _loop(self):
        while not self._stop.wait(INTERVAL_S):
            self._sample()

    def __exit__(self, *exc):
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._sample()
        cpu1 = cpu_seconds(self.pid)
        if self._cpu0 is not None and cpu1 is not None:
            self.cpu_s = cpu1 - self._cpu0

    @property
    def peak_mib(self) -> float | None:
        return self.peak / MIB if self.peak else None
