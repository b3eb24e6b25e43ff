"""Workload 8 (issue 14): a 4-shard safetensors checkpoint (4 x 256 MiB) loaded with 4 threads,
cold, on the shaped emulator: hubfs (each thread mmaps its shard in the mount) against
`snapshot_download` then the same load from the HF cache, and the local copy. Also the daemon's
CPU-s per GiB and the page-cache growth of the hubfs load."""

from .contenders import HF, HUBFS_NAME, LOCAL, peer_python
from .cost import Meter
from .results import Figure, Section, attempt
from .seed import SHARDED_REPO
from .util import GIB, cold_client, cold_local, log

LOAD_TIMEOUT_S = 150
THREADS = 4


def run(ctx) -> Section:
    emu = ctx.shaped
    shards = ctx.facts.shard_paths
    section = Section(
        "Sharded checkpoint, shaped emulator (workload 8)",
        f"Seconds (lower is better) in a fresh Python process, imports excluded: {len(shards)} "
        f"safetensors shards of 256 MiB, one `safe_open` (mmap) + `get_tensor` of every tensor per "
        f"thread, {THREADS} threads. Cold: fresh caches, page cache dropped. huggingface_hub = "
        "`snapshot_download` (its default parallel downloads), then the same load from its cache "
        "with the page cache dropped in between. CPU-s per GiB: hubfs's daemon during the load."
    )
    cold = section.row("4 shards with 4 threads, cold", "s", False, digits=2)
    cpu = section.row("CPU-s per GiB of the load", "CPU-s/GiB", False, digits=2)
    growth = section.row("page-cache growth per GiB loaded", "GiB/GiB", False, digits=2)

    def load(source, home):
        return peer_python("st_shards.py", [str(source), str(THREADS)], home, emu.url, timeout=LOAD_TIMEOUT_S)

    def hubfs():
        cold_client(emu, shards)
        with ctx.hubfs(emu, SHARDED_REPO) as m:
            with ctx.observe("sharded checkpoint, 4 threads (cold)", HUBFS_NAME, m, 512,
                             "< 512 MiB (4 readers)"), Meter(m.pid) as meter:
                out = load(m.path, ctx.scratch("hf-home"))
        cost = meter.cost
        gib = out["bytes"] / GIB
        if cost.cpu_s is not None:
            cpu.figures[HUBFS_NAME] = Figure(cost.cpu_s / gib, note=f"{cost.cpu_s:.1f} CPU-s")
        growth.figures[HUBFS_NAME] = Figure(cost.cache_growth / out["bytes"])
        return Figure(out["seconds"], note=f"{out['bytes'] / GIB:.2f} GiB of tensors")

    def hf():
        with ctx.temp_dir("hf-home-shards") as home:
            cold_client(emu, shards)
            out = load(f"hf:{SHARDED_REPO}", home)
            # The load alone, cold: what a user pays after the download.
            cold_local(shards)
            snapshot = next((home / "hub").glob("models--*sharded/snapshots/*"))
            again = load(snapshot, home)
        total = out["download_s"] + again["seconds"]
        return Figure(total, note=f"download {out['download_s']:.1f} s + load {again['seconds']:.2f} s")

    def local():
        cold_local(shards)
        folder = shards[0].rsplit("/", 1)[0]
        return Figure(load(folder, ctx.scratch("hf-home"))["seconds"])

    for contender, fn in ((HUBFS_NAME, hubfs), (HF, hf), (LOCAL, local)):
        attempt(cold, contender, fn, log)
    cold.check_speedup(HF, 4, ">= 4x download-then-load (snapshot_download)")
    cpu.check_value(HUBFS_NAME, "<= 1.5 CPU-s/GiB (4 readers)", lambda v: v <= 1.5)
    growth.check_value(HUBFS_NAME, "<= 1.2 GiB per GiB", lambda v: v <= 1.2)
    return section
