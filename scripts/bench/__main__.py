"""Runs the benchmark end to end: seed (or reuse) the repos, start the shaped and the unshaped
emulator on the seeded data, run the workloads with contenders interleaved (the writes on
emulators of their own, so the seeded repos never change), and write
bench/results/<UTC timestamp>.md, latest.md, latest.png and the README's performance section.

    python -m bench [--only NAME ...] [--reps N] [--no-readme]      (from scripts/)"""

import argparse
import contextlib
import os
import platform
import re
import shutil
import signal
import subprocess
import time

from . import report, w_buckets, w_first_byte, w_fio, w_metadata, w_safetensors, w_sequential, w_shared_cache, w_sharded, w_writes, w_xet, w_xet_edit
from . import util, w_xet_dedup
from .ctx import Bench
from .emulator import Emulator
from .seed import EMULATOR_DATA, ensure_seeded
from .util import RESULTS, ROOT, WORK, force_unmount, log, mounts_under

SHAPING = ["--latency-ms", "20", "--bandwidth", "50M"]
WORKLOADS = {
    "first-byte": lambda ctx: [w_first_byte.run_workload(ctx)],
    "sequential": lambda ctx: [w_sequential.cold_reads(ctx, ctx.shaped), w_sequential.cold_reads(ctx, ctx.unshaped)],
    "reread": lambda ctx: [w_sequential.rereads(ctx)],
    "safetensors": lambda ctx: [w_safetensors.run(ctx)],
    "sharded": lambda ctx: [w_sharded.run(ctx)],
    "fio": lambda ctx: [w_fio.run_workload(ctx)],
    "metadata": lambda ctx: [w_metadata.run(ctx)],
    "writes": lambda ctx: [w_writes.run_workload(ctx)],
    "shared-cache": lambda ctx: [w_shared_cache.run(ctx)],
    "xet-edit": lambda ctx: [w_xet_edit.run_workload(ctx)],
    # Issue 12: on Xet-era emulators and data of their own (w_xet, w_xet_dedup), not the seeded legacy ones.
    "xet-read": lambda ctx: w_xet.run(ctx, [("shaped", SHAPING), ("unshaped", [])]),
    "xet-dedup": lambda ctx: w_xet_dedup.run(ctx, [("shaped", SHAPING)]),
    "buckets": lambda ctx: [w_buckets.run_workload(ctx)],
}
# Workloads that need neither the legacy seed nor the shaped/unshaped legacy emulators.
OWN_DATA = {"xet-read", "xet-dedup"}


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _unmount_leftovers(run_dir):
    for mp in mounts_under(run_dir):
        log(f"unmounting leftover {mp}")
        force_unmount(mp)


def _measured_commit() -> str:
    """The commit being measured, taken when the run starts: a commit made while it measures
    (docs, say) must not be named as the code that ran."""
    def git(*a):
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip()
    return git("rev-parse", "--short", "HEAD") + (" (dirty)" if git("status", "--porcelain", "--", "src") else "")


def _header(started: float, duration: float, commit: str) -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return "\n".join([
        f"## hubfs benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}",
        "",
        f"`scripts/bench.sh` on hubfs {commit}: {os.cpu_count()} CPUs, {mem_gib:.0f} GiB RAM, "
        f"Linux {platform.release()}; shaped emulator `{' '.join(SHAPING)}` (per connection), "
        f"unshaped = loopback. Measuring took {duration / 60:.1f} min. One run per figure "
        "unless a section says otherwise. The machine is shared, so figures carry noise; "
        "contenders alternate within each workload. "
        + ("Before each cold read, free memory the size of the read plus 1 GiB is written and "
           "freed, so that every contender finds its pages backed by this VM's host (which "
           "takes free guest memory back and charges ~3 s per GiB to whoever touches it first)."
           if util.PRETOUCH else
           "Run with `--no-pretouch`: cold reads pay this VM's first touch of memory its host "
           "took back (~3 s per GiB, charged to whoever touches it first)."),
    ])


def main():
    parser = argparse.ArgumentParser(prog="bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=list(WORKLOADS),
                        help="run only this workload (repeatable)")
    parser.add_argument("--reps", type=int, default=2, help="repetitions of the after-remount re-reads (best one stands)")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    parser.add_argument("--no-pretouch", action="store_true",
                        help="no backed free pages before each cold read (see util.fresh_memory): "
                             "this VM's memory as it is")
    args = parser.parse_args()
    util.PRETOUCH = not args.no_pretouch
    # Also SIGINT: a shell that starts the run in the background makes Python ignore it.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)

    run_dir = WORK / "run"
    log_dir = WORK / "logs"
    _unmount_leftovers(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    log_dir.mkdir(parents=True, exist_ok=True)

    legacy = not args.only or any(n not in OWN_DATA for n in args.only)
    facts = ensure_seeded(log_dir) if legacy else None
    started = time.time()
    commit = _measured_commit()
    sections = []
    ctx = None
    try:
        with contextlib.ExitStack() as stack:
            shaped = unshaped = None
            if legacy:
                shaped = stack.enter_context(
                    Emulator("shaped", EMULATOR_DATA, log_dir / "emulator-shaped.log", SHAPING))
                unshaped = stack.enter_context(
                    Emulator("unshaped", EMULATOR_DATA, log_dir / "emulator-unshaped.log"))
            ctx = Bench(shaped, unshaped, facts, run_dir, log_dir, args.reps)
            for name, workload in WORKLOADS.items():
                if args.only and name not in args.only:
                    continue
                log(f"== {name}")
                sections += workload(ctx)
    finally:
        _unmount_leftovers(run_dir)
    duration = time.time() - started
    ctx.finish_rss()
    if ctx.rss.rows:
        sections.append(ctx.rss)

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    # Partial runs (--only) never replace latest.* nor the README: those show whole runs.
    name = f"{stamp}-partial" if args.only else "latest"
    report.chart(sections, RESULTS / f"{name}.png")
    header = _header(started, duration, commit)
    out = RESULTS / (f"{name}.md" if args.only else f"{stamp}.md")
    # The chart is only kept as the latest one, so the dated copy of a whole run has none.
    out.write_text(report.document(sections, ctx.diagnostics, header, f"{name}.png" if args.only else None))
    # Every counter of every hubfs run, for the anomaly a table's columns do not explain.
    out.with_suffix(".counters.json").write_text(report.counters_json(ctx.diagnostics))
    if not args.only:
        (RESULTS / "latest.md").write_text(report.document(sections, ctx.diagnostics, header, "latest.png"))
        if not args.no_readme:
            readme_doc = report.document(sections, [], header, "bench/results/latest.png")
            # One heading level down: the run sits inside the README's "## Performance".
            readme_doc = re.sub(r"^(#+) ", r"#\1 ", readme_doc, flags=re.M)
            readme_doc += "\nhubfs's counters per run: [bench/results/latest.md](bench/results/latest.md).\n"
            report.update_readme(readme_doc)
    passed, failed, missing = report.summary(sections)
    log(f"done in {duration / 60:.1f} min: {passed} targets pass, {failed} fail, {missing} without a figure; "
        f"{out.relative_to(ROOT)}")
    shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
