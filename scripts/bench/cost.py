"""What a read costs the machine besides time (issue 14): CPU seconds per GiB of each contender
and the growth of the OS page cache per GiB read.

CPU comes from /proc/PID/stat (utime + stime) of a long-lived serving process (the hubfs
daemon, the fsspec.fuse process), read before and after; for contenders that are short-lived
children of the benchmark (curl, cat, a Python download), from the kernel's account of waited-for
children (`getrusage(RUSAGE_CHILDREN)`: the same utime + stime, kept after /proc/PID is gone).
Page cache: `Cached` of /proc/meminfo before and after (the machine is shared: other activity
shows up as noise, which is why the figure is a ratio with a generous target)."""

import resource
from dataclasses import dataclass
from pathlib import Path

from . import rss
from .util import GIB


def cached_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Cached:"):
            return int(line.split()[1]) * 1024
    return 0


def _children_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


@dataclass
class Cost:
    cpu_s: float | None = None
    cache_growth: int | None = None

    def cpu_per_gib(self, nbytes: int) -> float | None:
        return None if self.cpu_s is None or not nbytes else self.cpu_s / (nbytes / GIB)

    def cache_per_gib(self, nbytes: int) -> float | None:
        return None if self.cache_growth is None or not nbytes else self.cache_growth / nbytes


class Meter:
    """`with Meter(pid) as m: ...` then `m.cost`: CPU of `pid` (or, with None, of the children
    that ended meanwhile) and the page-cache growth during the block."""

    def __init__(self, pid: int | None = None):
        self.pid = pid
        self.cost = Cost()

    def __enter__(self):
        self._cpu0 = rss.cpu_seconds(self.pid) if self.pid else _children_cpu()
        self._cached0 = cached_bytes()
        return self

    def __exit__(self, *exc):
        cpu1 = rss.cpu_seconds(self.pid) if self.pid else _children_cpu()
        self.cost = Cost(None if cpu1 is None or self._cpu0 is None else cpu1 - self._cpu0,
                         cached_bytes() - self._cached0)
