"""How the kernel holds a file in its page cache: in 4 KiB pages or in large folios.

A page-cache re-read is the kernel copying the file's cached pages to the reader, so its speed
depends on how big those pages are: one large folio is looked up, referenced and copied as a
whole, a 4 KiB page costs the same bookkeeping for a sixteenth of 64 KiB. ext4 caches files in
large folios; a FUSE file's cache is what the kernel's FUSE module allows. Measuring it (rather
than assuming) explains the same-mount re-read figure on whatever kernel runs the benchmark.

Needs root: /proc/kpageflags, and the page frame numbers in /proc/self/pagemap."""

import ctypes
import mmap
import os
import struct
from dataclasses import dataclass

PAGE = mmap.PAGESIZE
# /proc/kpageflags bits (Documentation/admin-guide/mm/pagemap.rst).
KPF_COMPOUND_HEAD = 15
KPF_COMPOUND_TAIL = 16
PFN_MASK = (1 << 55) - 1
PRESENT = 1 << 63


@dataclass
class Folios:
    pages: int  # 4 KiB pages of the file
    absent: int  # not in the page cache after the touch (mapping failed or evicted meanwhile)
    in_large: int  # pages that belong to a large folio
    large: int  # large folios

    @property
    def large_share(self) -> float:
        return self.in_large / self.pages if self.pages else 0.0

    @property
    def mean_large_kib(self) -> float:
        return self.in_large * PAGE / 1024 / self.large if self.large else 0.0

    def describe(self) -> str:
        if self.pages and not self.large:
            return "page cache in 4 KiB pages only"
        return (f"page cache {self.large_share:.0%} in large folios "
                f"({self.mean_large_kib:.0f} KiB on average)")


def page_frames(path) -> list[int]:
    """The pagemap entries of the file's pages, each page touched through a private mapping
    (reading it maps the page-cache page itself; nothing is copied unless written)."""
    with open(path, "rb") as f:
        n = os.fstat(f.fileno()).st_size // PAGE
        if n == 0:
            return []
        m = mmap.mmap(f.fileno(), n * PAGE, access=mmap.ACCESS_COPY)
        try:
            view = (ctypes.c_char * (n * PAGE)).from_buffer(m)
            try:
                for i in range(n):
                    view[i * PAGE]  # noqa: B018 (the read faults the page in)
                with open("/proc/self/pagemap", "rb") as pm:
                    pm.seek(ctypes.addressof(view) // PAGE * 8)
                    return list(struct.unpack(f"{n}Q", pm.read(n * 8)))
            finally:
                del view
        finally:
            m.close()


def folios(path) -> Folios:
    entries = page_frames(path)
    if entries and not any(e & PFN_MASK for e in entries):
        raise PermissionError("page frame numbers are hidden (needs CAP_SYS_ADMIN)")
    absent = in_large = large = 0
    with open("/proc/kpageflags", "rb") as kf:
        for e in entries:
            if not e & PRESENT:
                absent += 1
                continue
            kf.seek((e & PFN_MASK) * 8)
            flags = struct.unpack("Q", kf.read(8))[0]
            if flags >> KPF_COMPOUND_HEAD & 1:
                large += 1
                in_large += 1
            elif flags >> KPF_COMPOUND_TAIL & 1:
                in_large += 1
    return Folios(len(entries), absent, in_large, large)
