"""Cluster workload (issue 15): 4 "nodes" (hubfs mounts with separate, fresh local caches)
read the same 1 GiB file cold from the shaped emulator, with local caches only and with a
shared cache on a real 3-node Garage cluster (replication factor 3, loopback). Figures: the
bytes the Hub served in all, and the wall time until the last node has the whole file; once
with the nodes one after another (a job's nodes starting at different moments: each later
node finds the file in the shared cache), once all at once (nothing is in the shared cache
yet when they start: each node fetches what no other has written yet)."""

import contextlib
import importlib.util
import time
from contextlib import ExitStack

from .contenders import HUBFS_ALONE, HUBFS_NAME, cat_files
from .results import Figure, Section, attempt_many
from .seed import LFS_FILES, LFS_REPO
from .util import GIB, ROOT, BenchError, cold_client, log

NODES = 4
READ_TIMEOUT_S = 600


def _garage_module():
    spec = importlib.util.spec_from_file_location("garage", ROOT / "tests" / "mount" / "garage.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@contextlib.contextmanager
def _cluster(ctx):
    garage = _garage_module().Garage(ctx.scratch("garage")).start()
    try:
        yield garage
    finally:
        garage.stop()


def _run(ctx, emu, garage, prefix, together: bool):
    """Bytes the Hub served and seconds until every node read the file."""
    name = LFS_FILES[0]
    cold_client(emu, ctx.facts.lfs_paths[:1])
    args = garage.mount_args(prefix) if garage else ()
    env = garage.env() if garage else None
    with ExitStack() as stack:
        nodes = [stack.enter_context(ctx.hubfs(emu, LFS_REPO, args=args, env_extra=env)) for _ in range(NODES)]
        before = emu.bytes_served()
        t0 = time.perf_counter()
        if together:
            r = cat_files([m.path / name for m in nodes], READ_TIMEOUT_S)
            if r.partial:
                raise BenchError("a node did not finish in time")
        else:
            for m in nodes:
                if cat_files([m.path / name], READ_TIMEOUT_S).partial:
                    raise BenchError("a node did not finish in time")
                if garage:
                    _settle(m)
        seconds = time.perf_counter() - t0
        served = emu.bytes_served() - before
        shared = [m.status().get("shared_cache") or {} for m in nodes]
    hits = sum((s.get("stats") or {}).get("bytes", 0) for s in shared)
    drops = sum((s.get("stats") or {}).get("drops", 0) for s in shared)
    note = f"{seconds:.1f} s" if not garage else f"{seconds:.1f} s; {hits / GIB:.2f} GiB from the shared cache, {drops} fills dropped"
    return served, seconds, note


def _settle(m, timeout=120):
    """The next node starts once this one's fills are written (a later job step, not a race)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = m.status()
        s = st["shared_cache"]
        done = s["stats"]["fills"] + s["stats"]["drops"] + s["stats"]["fill_errors"]
        if s["queued_fills"] == 0 and s["backlog"] == 0 and done * (128 << 10) >= st["read"]["bytes_fetched"]:
            return
        time.sleep(0.2)


def run(ctx) -> Section:
    emu = ctx.shaped
    section = Section(
        "Cluster: 4 nodes read one 1 GiB file cold, shaped emulator (issue 15)",
        "hubfs = 4 mounts with `--shared-cache` on a 3-node Garage cluster (replication factor 3, "
        "loopback, same 2 CPUs); peer = the same 4 mounts with local caches only. Each node has a "
        "fresh local cache; the emulator's copy is in RAM. GiB served by the Hub in all, and "
        "seconds until the last node read the whole file (lower is better)."
    )
    rows = {}
    for together in (False, True):
        label = "all at once" if together else "one after another"
        rows[together] = (section.row(f"GiB from the Hub, {label}", "GiB", False, digits=2),
                          section.row(f"seconds, {label}", "s", False, digits=1))
    with _cluster(ctx) as garage:
        for together in (False, True):
            gib_row, time_row = rows[together]
            for contender, g in ((HUBFS_ALONE, None), (HUBFS_NAME, garage)):
                prefix = f"bench-{'together' if together else 'staggered'}-{int(time.time())}"

                def measure(g=g, prefix=prefix, contender=contender):
                    served, seconds, note = _run(ctx, emu, g, prefix, together)
                    gib_row.figures[contender] = Figure(served / GIB, note=note)
                    return {contender: Figure(seconds, note=note)}

                attempt_many(time_row, [contender], measure, log)
    rows[False][0].check_speedup(HUBFS_ALONE, 3, ">= 3x fewer Hub bytes")
    return section
