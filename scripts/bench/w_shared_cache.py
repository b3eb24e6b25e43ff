"""Cluster workload (issue 15): 4 "nodes" (hubfs mounts with separate, fresh local caches)
read the same 1 GiB file cold from the shaped emulator, with local caches only and with a
shared cache on a real 3-node Garage cluster (replication factor 3, loopback). Figures: the
bytes the Hub served in all, and read time; once with the nodes one after another (a job's
nodes starting at different moments: each later node finds the file in the shared cache),
once all at once (nothing is in the shared cache yet when they start: a node that misses a
segment claims it and fetches it, the others wait for it to land in the bucket). One after another, each node's read is timed on its own and the
wait for its fills to land in the bucket (the next node starts after it) is reported apart:
it is the store's write time, not anyone's read time."""

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
    """Bytes the Hub served, seconds of reading (all at once: until every node read the file;
    one after another: the sum of the nodes' reads), the later nodes' mean read seconds (one
    after another), and a note."""
    name = LFS_FILES[0]
    cold_client(emu, ctx.facts.lfs_paths[:1])
    args = garage.mount_args(prefix) if garage else ()
    env = garage.env() if garage else None
    reads, fill_wait = [], 0.0
    with ExitStack() as stack:
        nodes = [stack.enter_context(ctx.hubfs(emu, LFS_REPO, args=args, env_extra=env)) for _ in range(NODES)]
        before = emu.bytes_served()
        t0 = time.perf_counter()
        if together:
            r = cat_files([m.path / name for m in nodes], READ_TIMEOUT_S)
            if r.partial:
                raise BenchError("a node did not finish in time")
            reads.append(time.perf_counter() - t0)
        else:
            for m in nodes:
                t = time.perf_counter()
                if cat_files([m.path / name], READ_TIMEOUT_S).partial:
                    raise BenchError("a node did not finish in time")
                reads.append(time.perf_counter() - t)
                if garage:
                    t = time.perf_counter()
                    _settle(m)
                    fill_wait += time.perf_counter() - t
        seconds = sum(reads)
        served = emu.bytes_served() - before
        shared = [m.status().get("shared_cache") or {} for m in nodes]
    later = sum(reads[1:]) / len(reads[1:]) if len(reads) > 1 else None
    hits = sum((s.get("stats") or {}).get("bytes", 0) for s in shared)
    drops = sum((s.get("stats") or {}).get("drops", 0) for s in shared)
    slow = sum((s.get("stats") or {}).get("slow", 0) + (s.get("stats") or {}).get("errors", 0) for s in shared)
    split = sum((s.get("stats") or {}).get("split_runs", 0) for s in shared)
    split_hub = sum((s.get("stats") or {}).get("split_hub_bytes", 0) for s in shared)
    claim = {k: sum((s.get("stats") or {}).get(k, 0) for s in shared)
             for k in ("claims", "waits", "wait_hits", "wait_timeouts")}
    note = "nodes " + ", ".join(f"{r:.1f}" for r in reads) + " s"
    if garage:
        note += f"; {hits / GIB:.2f} GiB from the shared cache, {drops} fills dropped, {slow} lookups slow or failed"
        note += f", {split} runs split ({split_hub / GIB:.2f} GiB of them from the Hub)"
        note += (f"; segments claimed {claim['claims']}, waited for {claim['waits']} "
                 f"({claim['wait_hits']} read from the tier, {claim['wait_timeouts']} timed out)")
        rates = [(s.get("tier_run_mib_s"), s.get("hub_mib_s"), s.get("lookups_peak")) for s in shared]
        note += f"; tier/Hub MiB/s per run part, peak lookups: {rates}"
        if not together:
            note += f"; waiting for fills {fill_wait:.1f} s (not timed)"
    return served, seconds, later, note


def _settle(m, timeout=300):
    """The next node starts once this one's fills are written (a later job step, not a race):
    no fill queued or being written, no segment in the backlog, seen twice in a row."""
    deadline = time.time() + timeout
    quiet = 0
    while time.time() < deadline:
        s = m.status()["shared_cache"]
        quiet = quiet + 1 if s["queued_fills"] == 0 and s["backlog"] == 0 else 0
        if quiet >= 2:
            return
        time.sleep(0.2)
    raise BenchError("fills did not settle in time")


def run(ctx) -> Section:
    emu = ctx.shaped
    section = Section(
        "Cluster: 4 nodes read one 1 GiB file cold, shaped emulator (issue 15)",
        "hubfs = 4 mounts with `--shared-cache` on a 3-node Garage cluster (replication factor 3, "
        "loopback, same 2 CPUs); peer = the same 4 mounts with local caches only. Each node has a "
        "fresh local cache; the emulator's copy is in RAM. GiB served by the Hub in all, and "
        "seconds of reading (lower is better): all at once, until the last node read the whole file; "
        "one after another, the nodes' reads added up (waiting for one node's fills to land in the "
        "bucket before the next starts is not counted, it is in the notes), and a later node's read alone."
    )
    rows = {}
    for together in (False, True):
        label = "all at once" if together else "one after another"
        rows[together] = (section.row(f"GiB from the Hub, {label}", "GiB", False, digits=2),
                          section.row(f"seconds, {label}", "s", False, digits=1))
    later_row = section.row("seconds per later node (2-4), one after another", "s", False, digits=1)
    with _cluster(ctx) as garage:
        for together in (False, True):
            gib_row, time_row = rows[together]
            for contender, g in ((HUBFS_ALONE, None), (HUBFS_NAME, garage)):
                prefix = f"bench-{'together' if together else 'staggered'}-{int(time.time())}"

                def measure(g=g, prefix=prefix, contender=contender, together=together):
                    served, seconds, later, note = _run(ctx, emu, g, prefix, together)
                    gib_row.figures[contender] = Figure(served / GIB, note=note)
                    if later is not None:
                        later_row.figures[contender] = Figure(later, note=note)
                    return {contender: Figure(seconds, note=note)}

                attempt_many(time_row, [contender], measure, log)
    rows[False][0].check_speedup(HUBFS_ALONE, 3, ">= 3x fewer Hub bytes")
    rows[True][0].check_speedup(HUBFS_ALONE, 3, ">= 3x fewer Hub bytes")
    later_row.check_speedup(HUBFS_ALONE, 1, "a node reading from the shared cache is at least as fast as from the Hub")
    return section
