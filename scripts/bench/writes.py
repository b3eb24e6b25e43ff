#!/usr/bin/env python3
"""Write workload benchmark: `cp` into a writable hubfs mount until landed (`hubfs sync`) vs
huggingface_hub's `upload_file` / `upload_folder` of the same data, on the same local emulator,
unshaped and shaped (--latency-ms 20 --bandwidth 50M). Prints a markdown table.

    CARGO_TARGET_DIR=... python scripts/bench/writes.py [--size 1G] [--files 1000]

Loopback only: the emulator listens on 127.0.0.1.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "mount"))
os.environ["HF_HUB_DISABLE_XET"] = "1"

from conftest import HUBFS, WRITE_TOKEN, Emulator, hubfs_env  # noqa: E402


def parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(s[:-1]) * units[s[-1].upper()]) if s[-1].upper() in units else int(s)


def make_data(work, size, files):
    big = work / "big.bin"
    rng = random.Random(1)
    with open(big, "wb") as f:
        left = size
        while left:
            n = min(left, 8 << 20)
            f.write(rng.randbytes(n))
            left -= n
    small = work / "small"
    for i in range(files):
        d = small / f"d{i % 10}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.txt").write_bytes(rng.randbytes(rng.randint(100, 4000)))
    return big, small


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def mount(emu, repo, mp, cache):
    mp.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([HUBFS, "mount", repo, str(mp), "--endpoint", emu.url, "--cache-dir", str(cache)],
                       capture_output=True, text=True, env=hubfs_env(WRITE_TOKEN, RUST_LOG="hubfs=info,warn"),
                       timeout=120)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)


def unmount(mp):
    subprocess.run([HUBFS, "unmount", str(mp)], capture_output=True, timeout=600)


def sync(mp):
    r = subprocess.run([HUBFS, "sync", "--timeout", "3600", str(mp)], capture_output=True, text=True, timeout=3700)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)


def run(emu, work, big, small):
    from huggingface_hub import HfApi
    api = HfApi(endpoint=emu.url, token=WRITE_TOKEN)
    results = {}

    def new_repo():
        repo = f"alice/bench-{uuid.uuid4().hex[:8]}"
        api.create_repo(repo)
        return repo

    for label, src in (("big", big), ("small", small)):
        repo = new_repo()
        mp, cache = work / f"mnt-{label}", work / f"cache-{label}"
        mount(emu, repo, mp, cache)
        try:
            def cp_and_sync():
                if src.is_dir():
                    shutil.copytree(src, mp / src.name)
                else:
                    shutil.copyfile(src, mp / src.name)
                sync(mp)
            results[("hubfs", label)] = timed(cp_and_sync)
        finally:
            unmount(mp)
            shutil.rmtree(cache, ignore_errors=True)
        repo = new_repo()
        if src.is_dir():
            results[("hf", label)] = timed(lambda: api.upload_folder(repo_id=repo, folder_path=str(src),
                                                                      path_in_repo=src.name))
        else:
            results[("hf", label)] = timed(lambda: api.upload_file(repo_id=repo, path_or_fileobj=str(src),
                                                                    path_in_repo=src.name))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1G", help="size of the large file")
    ap.add_argument("--files", type=int, default=1000, help="number of small files")
    args = ap.parse_args()
    size = parse_size(args.size)
    work = Path(tempfile.mkdtemp(prefix="hubfs-bench-writes-"))
    try:
        big, small = make_data(work, size, args.files)
        rows = []
        for shaping, extra in (("unshaped", []), ("20 ms, 50 MB/s", ["--latency-ms", "20", "--bandwidth", "50M"])):
            data = work / f"emu-{len(rows)}"
            data.mkdir()
            emu = Emulator(data, extra).start()
            try:
                res = run(emu, work, big, small)
            finally:
                emu.stop()
                shutil.rmtree(data, ignore_errors=True)
            for label, what in (("big", f"1 file of {args.size}"), ("small", f"{args.files} small files")):
                h, f = res[("hubfs", label)], res[("hf", label)]
                rows.append((shaping, what, h, f))
        print(f"| network | data | hubfs `cp` + `hubfs sync` (s) | huggingface_hub upload (s) | ratio |")
        print("|---|---|---:|---:|---:|")
        for shaping, what, h, f in rows:
            print(f"| {shaping} | {what} | {h:.1f} | {f:.1f} | {h / f:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
