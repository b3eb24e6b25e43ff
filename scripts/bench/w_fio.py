"""Workload 4: fio random reads of a 1 GiB LFS file on the shaped emulator, 4 KiB and 256 KiB,
1 and 4 jobs, cold, 20 s each: IOPS and p99 completion latency from fio's JSON output.

The target is stated against the request latency: the time of one ranged GET of that size.
It is measured here with curl on the same emulator, both straight to the file's CDN location
(one round trip, what hubfs does once it knows the location) and through the resolve redirect
(two). The curl column shows jobs / (one direct GET): the IOPS of exactly one round trip per
read, the target's reference."""

import json
import statistics

from .contenders import CURL, HFFUSE, HUBFS_NAME, LOCAL, cdn_location, curl_get
from .results import Figure, Section, attempt
from .seed import LFS_FILES, LFS_REPO, LFS_SIZE
from .util import KIB, MIB, cold_client, drop_caches, log, run

RUNTIME_S = 20
# The local copy is only the ceiling and reaches steady state at once; a shorter run keeps the
# whole benchmark within its time budget.
LOCAL_RUNTIME_S = 5
# The Python peer is a reference, not a target: its rate is steady after a few seconds, and a
# shorter run keeps the benchmark within its time budget.
HFFUSE_RUNTIME_S = 10
CONFIGS = [(4, 1), (4, 4), (256, 1), (256, 4)]  # (block KiB, jobs)
LATENCY_SAMPLES = 7


def fio(path, bs_kib: int, jobs: int, runtime_s: int = RUNTIME_S) -> Figure:
    cmd = ["fio", "--name=randread", f"--filename={path}", "--readonly", "--rw=randread",
           f"--bs={bs_kib}k", f"--numjobs={jobs}", f"--runtime={runtime_s}", "--time_based",
           "--direct=0", "--ioengine=psync", f"--size={LFS_SIZE}", "--group_reporting",
           "--output-format=json"]
    r = run(cmd, timeout=runtime_s + 60)
    out = json.loads(r.stdout[r.stdout.index("{"):])
    read = out["jobs"][0]["read"]
    p99_ms = read["clat_ns"]["percentile"]["99.000000"] / 1e6
    return Figure(read["iops"], note=f"p99 {p99_ms:.1f} ms")


def request_latency(emu, bs_kib: int) -> tuple[float, float]:
    """Median seconds of one ranged GET of `bs_kib` KiB: (direct to the CDN, via redirect)."""
    url = emu.resolve_url(LFS_REPO, LFS_FILES[0])
    cdn = cdn_location(url)
    direct, redirected = [], []
    for i in range(LATENCY_SAMPLES):
        start = (i * 97 + 13) * (1 << 20)  # spread over the file
        rng = f"{start}-{start + bs_kib * KIB - 1}"
        direct.append(curl_get(cdn, 30, rng)[0])
        redirected.append(curl_get(url, 30, rng)[0])
    return statistics.median(direct), statistics.median(redirected)


def run_workload(ctx) -> Section:
    emu = ctx.shaped
    name = LFS_FILES[0]
    section = Section(
        "Random reads with fio, shaped emulator (workload 4)",
        f"IOPS (higher is better) and p99 completion latency of `fio --rw=randread --runtime="
        f"{RUNTIME_S} --time_based --direct=0 --ioengine=psync` on a 1 GiB file, cold (fresh "
        "mount and cache, page cache dropped; the emulator's copy in memory). curl column: jobs / (time of one ranged GET of "
        "that size straight to the CDN URL), the IOPS of one round trip per read; the note gives "
        f"the GET times direct and via the resolve redirect (median of {LATENCY_SAMPLES}). The "
        f"local copy (the ceiling) runs {LOCAL_RUNTIME_S} s, HfFileSystem {HFFUSE_RUNTIME_S} s."
    )
    for bs_kib, jobs in CONFIGS:
        row = section.row(f"{bs_kib} KiB, {jobs} job{'s' if jobs > 1 else ''}", "IOPS", True, digits=1)

        def curl_reference():
            emu.warm([emu.stored_object(ctx.facts.lfs_paths[0])])  # as for the mounts (`cold_client`)
            direct, redirected = request_latency(emu, bs_kib)
            return Figure(jobs / direct, note=f"GET {direct * 1000:.1f} ms direct, {redirected * 1000:.1f} ms via redirect")

        def hubfs():
            cold_client(emu, ctx.facts.lfs_paths[:1], touch=False)  # a few MiB read
            with ctx.hubfs(emu, LFS_REPO) as m:
                with ctx.observe(f"fio {row.label}", HUBFS_NAME, m, 256, "< 256 MiB (one file)"):
                    fig = fio(m.path / name, bs_kib, jobs)
                # Read-ahead can turn random reads into cache hits: show what was fetched.
                fetched = m.status().get("read", {}).get("bytes_fetched", 0)
                fig.note += f", {fetched / MIB:.0f} MiB fetched"
                return fig

        def hffuse():
            cold_client(emu, ctx.facts.lfs_paths[:1], touch=False)  # a few MiB read
            with ctx.hffuse(emu, LFS_REPO) as m:
                with ctx.observe(f"fio {row.label}", HFFUSE, m):
                    fig = fio(m.path / name, bs_kib, jobs, HFFUSE_RUNTIME_S)
            fig.note += f", {HFFUSE_RUNTIME_S} s run"
            return fig

        def local():
            drop_caches()
            fig = fio(ctx.facts.lfs_paths[0], bs_kib, jobs, LOCAL_RUNTIME_S)
            fig.note += f", {LOCAL_RUNTIME_S} s run"
            return fig

        for contender, fn in ((CURL, curl_reference), (HUBFS_NAME, hubfs), (HFFUSE, hffuse), (LOCAL, local)):
            attempt(row, contender, fn, log)
        row.check_speedup(CURL, 0.8, ">= 0.8 x jobs / request latency")
    return section
