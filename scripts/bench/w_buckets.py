"""Bucket writes (issue 12 item 5): `cp -r` of 1,000 small files into a writable hubfs bucket
mount, timed until `hubfs sync` returns (everything landed through Xet and the batch API),
against huggingface_hub's `sync_bucket` (what `hf buckets sync DIR hf://buckets/…` runs) of the
same folder into an equally empty bucket.

Each contender gets its own emulator with Xet on (buckets are Xet-only), on an empty data
directory (removed afterwards), so neither can deduplicate against the other's upload. Figures:
seconds, and the HTTP requests the emulator answered during the upload (its `requests` counter,
Hub and CAS ports together). Every upload is checked with the official client
(`list_bucket_tree`): every path present with its size.

Runs inside the benchmark (`python -m bench --only buckets`), or alone and small for a quick
look: `python -m bench.w_buckets [N_FILES]` (from scripts/) prints the figures as JSON."""

import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .contenders import HF, HUBFS_NAME, HubfsMount, peer_python
from .emulator import USER, WRITE_TOKEN, Emulator
from .results import Figure, Section, attempt
from .util import KIB, BenchError, log, run

N_FILES = 1000
# 1-8 KiB of text each, in 40 folders (the "cp -r of a project folder" case of w_writes).
SIZES = (1 * KIB, 8 * KIB)
FOLDERS = 40
LAND_TIMEOUT_S = 300


def small_tree(root: Path, n: int) -> dict:
    """Writes `n` files under `root`; returns {relative path: size}."""
    rng = np.random.default_rng(7)
    sizes = {}
    for i in range(n):
        rel = f"dir{i % FOLDERS:02d}/file{i:04d}.txt"
        size = int(rng.integers(*SIZES))
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.bytes((size + 1) // 2).hex()[:size].encode())
        sizes[rel] = size
    return sizes


def _delta(before: dict, after: dict) -> dict:
    """What the emulator answered between two stats snapshots: all requests, and the ones that
    explain them (global-dedup queries, xorb uploads, batch calls)."""
    routes = lambda s: s.get("routes", {})  # noqa: E731
    return {
        "requests": after["requests"] - before["requests"],
        "dedup_queries": after["dedup_queries"] - before["dedup_queries"],
        "xorb_uploads": after["xorb_uploads"] - before["xorb_uploads"],
        "batch_calls": routes(after).get("bucket-batch", 0) - routes(before).get("bucket-batch", 0),
    }


def _check(api, bucket: str, prefix: str, sizes: dict):
    landed = {
        e.path[len(prefix) + 1:]: e.size
        for e in api.list_bucket_tree(bucket, prefix=prefix, recursive=True)
        if getattr(e, "type", "") == "file"
    }
    wrong = sum(landed.get(p) != s for p, s in sizes.items())
    if wrong or len(landed) != len(sizes):
        raise BenchError(f"{len(landed)} files landed; {wrong} of {len(sizes)} missing or different")


@contextlib.contextmanager
def _empty_bucket(work: Path, name: str, log_dir: Path, shaping=()):
    """A new Xet emulator on an empty data directory, an empty bucket on it, and the client."""
    from huggingface_hub import HfApi

    data = Path(tempfile.mkdtemp(prefix=f"emu-{name}-", dir=work))
    try:
        with Emulator(f"buckets-{name}", data, log_dir / f"emulator-buckets-{name}.log", shaping, xet=True) as emu:
            api = HfApi(endpoint=emu.url, token=WRITE_TOKEN)
            bucket = f"{USER}/{name}"
            api.create_bucket(bucket)
            yield emu, api, bucket
    finally:
        shutil.rmtree(data, ignore_errors=True)


def measure_hubfs(work: Path, log_dir: Path, local: Path, sizes: dict, shaping=()) -> dict:
    with _empty_bucket(work, "hubfs", log_dir, shaping) as (emu, api, bucket):
        mnt, cache, home = (Path(tempfile.mkdtemp(prefix=p, dir=work)) for p in ("mnt-", "cache-", "home-"))
        try:
            with HubfsMount(emu, f"hf://buckets/{bucket}", mnt, cache, home, token=WRITE_TOKEN) as m:
                before = emu.stats()
                t0 = time.perf_counter()
                run(["cp", "-r", local, m.path / local.name], timeout=LAND_TIMEOUT_S)
                copied = time.perf_counter() - t0
                m.sync(LAND_TIMEOUT_S)
                seconds = time.perf_counter() - t0
                counts = _delta(before, emu.stats())
            _check(api, bucket, local.name, sizes)
            return {"seconds": seconds, "cp_seconds": copied, **counts}
        finally:
            for d in (mnt, cache, home):
                shutil.rmtree(d, ignore_errors=True)


def measure_hf(work: Path, log_dir: Path, local: Path, sizes: dict, shaping=()) -> dict:
    with _empty_bucket(work, "hf", log_dir, shaping) as (emu, api, bucket):
        home = Path(tempfile.mkdtemp(prefix="hf-home-", dir=work))
        try:
            before = emu.stats()
            out = peer_python("peer_hf.py", ["bucket-sync", "bucket", bucket, local, local.name], home,
                              emu.url, LAND_TIMEOUT_S, token=WRITE_TOKEN, xet=True)
            counts = _delta(before, emu.stats())
            _check(api, bucket, local.name, sizes)
            return {"seconds": out["seconds"], **counts}
        finally:
            shutil.rmtree(home, ignore_errors=True)


def run_workload(ctx) -> Section:
    section = Section(
        "Bucket writes: `cp -r` into a bucket mount vs `hf buckets sync` (issue 12)",
        f"Seconds until {N_FILES:,} small files (1-8 KiB, {FOLDERS} folders) are in a Storage "
        "Bucket (lower is better), and the HTTP requests the emulator answered meanwhile (Hub and "
        "CAS). hubfs: `cp -r` into a writable mount of an empty bucket, then `hubfs sync`. "
        "huggingface_hub: `sync_bucket` (the `hf buckets sync` command) of the same folder, call "
        "time only. Each run has its own empty Xet emulator on the shaped connection; each upload "
        "is checked with `list_bucket_tree` before its figure counts.",
    )
    shaping = ctx.shaped.shaping
    with ctx.temp_dir("bucket-data") as data:
        local = data / "small-files"
        sizes = small_tree(local, N_FILES)
        secs = section.row(f"cp -r of {N_FILES:,} small files, shaped", "s", higher_is_better=False, digits=1)
        reqs = section.row(f"requests for {N_FILES:,} small files", "requests", higher_is_better=False, digits=0)
        for contender, fn in ((HUBFS_NAME, measure_hubfs), (HF, measure_hf)):
            result = {}

            def once(fn=fn, result=result):
                result.update(fn(ctx.scratch("buckets"), ctx.log_dir, local, sizes, shaping))
                note = f"cp {result['cp_seconds']:.1f} s + sync" if "cp_seconds" in result else ""
                return Figure(result["seconds"], note=note)

            attempt(secs, contender, once, log)
            if result:
                reqs.figures[contender] = Figure(
                    result["requests"],
                    note=f"{result['dedup_queries']} dedup queries, {result['xorb_uploads']} xorbs, "
                         f"{result['batch_calls']} batch calls")
    return section


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    work = Path(tempfile.mkdtemp(prefix="hubfs-bench-buckets-"))
    try:
        local = work / "small-files"
        sizes = small_tree(local, n)
        out = {"files": n,
               HUBFS_NAME: measure_hubfs(work, work, local, sizes),
               HF: measure_hf(work, work, local, sizes)}
        print(json.dumps(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
