"""A cold read through a hubfs mount on the benchmark's unshaped emulator, with what issue 14
asks to look at: the daemon's CPU-seconds per GiB (utime + stime from /proc/PID/stat), the
growth of `Cached` in /proc/meminfo per GiB read, and optionally a `perf record` of the daemon
and its top symbols. A development tool, not a benchmark row (the seed must exist:
`scripts/bench.sh` or any `--only` run creates it).

    python -m bench.profile_read [--files N] [--perf OUT.data] [--shaped] [--memory] [--xet]   (from scripts/)

`--memory` samples `hubfs status` and the RSS during the read and logs, at the RSS peak and at
their own peaks, where the daemon's memory is: read-ahead held (in flight or waiting for its
reader), blocks parked ahead of the hash, blocks in flight. `HUBFS=/path/to/hubfs` compares
another binary (for instance main's, copied aside) with the same seed.

`--xet`: the 1 GiB Xet file of `--only xet-read` instead (seeded here if needed), read through
the CAS; add `--mount-args=--no-xet` for the bridge."""

import argparse
import os
import subprocess
import threading
import time
from pathlib import Path

from . import rss, util
from .contenders import HubfsMount, ReadResult, cat_files, peer_python
from .emulator import Emulator
from .seed import EMULATOR_DATA, LFS_FILES, LFS_REPO, SHARDED_REPO, ensure_seeded
from .util import GIB, WORK, cold_client, fresh_dir, log
from . import w_xet

SHAPING = ["--latency-ms", "20", "--bandwidth", "50M"]


def cached_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Cached:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no Cached line in /proc/meminfo")


class StatusSampler:
    """Samples the mount's status and the daemon's RSS every 0.25 s while the read runs."""

    def __init__(self, mount):
        self.mount = mount
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.wait(0.25):
            try:
                s = self.mount.status()
            except Exception:  # a status that times out on a busy machine: skip the sample
                continue
            ra = s.get("read_ahead") or {}
            self.samples.append({
                "rss_mib": (rss.rss_bytes(self.mount.pid) or 0) / (1 << 20),
                "read_ahead_mib": ra.get("bytes", 0) / (1 << 20),
                "hash_parked_mib": ra.get("hash_parked_bytes", 0) / (1 << 20),
                "inflight_blocks": s.get("inflight_blocks", 0),
            })

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "no status samples"
        at_peak = max(self.samples, key=lambda x: x["rss_mib"])
        peaks = {k: max(x[k] for x in self.samples) for k in at_peak}
        fmt = lambda d: ", ".join(f"{k} {v:.0f}" for k, v in d.items())  # noqa: E731
        return f"at the RSS peak: {fmt(at_peak)}; peaks: {fmt(peaks)} ({len(self.samples)} samples)"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--files", type=int, default=1)
    p.add_argument("--perf", help="perf record -g the daemon into this file")
    p.add_argument("--call-graph", default="fp",
                   help="perf's --call-graph: fp (default) or dwarf (a `--profile profiling` "
                        "build has no frame pointers, so its stacks need dwarf)")
    p.add_argument("--freq", type=int, default=999,
                   help="perf's sampling rate in Hz (dwarf stacks at perf's default 4000 Hz lose samples)")
    p.add_argument("--shaped", action="store_true")
    p.add_argument("--memory", action="store_true", help="sample status and RSS during the read")
    p.add_argument("--mount-args", default="", help="extra `hubfs mount` options, space-separated")
    p.add_argument("--xet", action="store_true", help="the 1 GiB Xet file, through the CAS")
    p.add_argument("--sharded", action="store_true",
                   help="the 4-shard checkpoint of workload 8 loaded with 4 threads (mmap) instead of cat")
    p.add_argument("--no-pretouch", action="store_true",
                   help="no backed free pages before the read (util.fresh_memory): the VM as it is")
    p.add_argument("--kernel-read-ahead", type=int, metavar="KIB",
                   help="set the mount's read_ahead_kb (the kernel's read-ahead, mmap read-around) to this")
    a = p.parse_args()
    util.PRETOUCH = not a.no_pretouch
    log_dir = WORK / "logs"
    if a.xet:
        w_xet.ensure_xet_seeded(log_dir)
        names, repo, data = [w_xet.XET_FILE], w_xet.XET_REPO, w_xet.XET_DATA
    else:
        facts = ensure_seeded(log_dir)
        names, repo, data = LFS_FILES[:a.files], LFS_REPO, EMULATOR_DATA
        if a.sharded:
            repo = SHARDED_REPO
    run = fresh_dir(WORK / "run-profile")
    with Emulator("profile", data, log_dir / "emulator-profile.log",
                  SHAPING if a.shaped else (), xet=a.xet) as emu:
        if a.xet:
            w_xet._cold(emu)
        else:
            cold_client(emu, facts.shard_paths if a.sharded else facts.lfs_paths[:a.files])
        with HubfsMount(emu, repo, run / "mnt", fresh_dir(run / "cache"), fresh_dir(run / "hf"),
                        args=a.mount_args.split()) as m:
            # Listed first: a file opened before its directory was listed reads through the bridge.
            os.listdir(m.path)
            if a.kernel_read_ahead:
                dev = os.stat(m.path).st_dev
                knob = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
                knob.write_text(str(a.kernel_read_ahead))
                log(f"{knob}: {knob.read_text().strip()} KiB")
            perf = None
            if a.perf:
                perf = subprocess.Popen(["perf", "record", "-F", str(a.freq), "--call-graph", a.call_graph,
                                         "-o", a.perf,
                                         "-p", str(m.pid)],
                                        stderr=subprocess.DEVNULL)
                time.sleep(1)
            cpu0, cached0, emu0 = rss.cpu_seconds(m.pid), cached_bytes(), rss.cpu_seconds(emu.proc.pid)
            memory = StatusSampler(m) if a.memory else None
            with rss.Sampler(m.pid) as sampler:
                if memory:
                    memory.__enter__()
                try:
                    if a.sharded:
                        out = peer_python("st_shards.py", [str(m.path), "4"], fresh_dir(run / "hf-home"),
                                          emu.url, timeout=300)
                        r = ReadResult(seconds=out["seconds"], bytes=out["bytes"], partial=False)
                    else:
                        r = cat_files([m.path / n for n in names], 600)
                finally:
                    if memory:
                        memory.__exit__(None, None, None)
            cpu1, cached1, emu1 = rss.cpu_seconds(m.pid), cached_bytes(), rss.cpu_seconds(emu.proc.pid)
            if perf:
                perf.send_signal(2)
                perf.wait(60)
            gib = r.bytes / GIB
            what = "4 shards (mmap, 4 threads)" if a.sharded else f"{a.files} file(s)"
            log(f"{what}: {r.mib_s:.0f} MiB/s ({r.bytes >> 20} MiB in {r.seconds:.2f} s); "
                f"daemon CPU {(cpu1 - cpu0) / gib:.2f} s/GiB; emulator CPU {(emu1 - emu0) / gib:.2f} s/GiB; "
                f"page cache growth {(cached1 - cached0) / r.bytes:.2f} GiB/GiB; peak RSS {sampler.peak_mib:.0f} MiB")
            log(f"status: {m.status().get('read')}")
            if memory:
                log(f"memory: {memory.summary()}")
            if a.xet:
                log(f"xet: {m.status().get('xet')}")
            data = [str(f) for f in (run / "cache").rglob("*.data")]
            out = subprocess.run(["fincore", "-b", "-n", "-o", "RES", *data], capture_output=True, text=True).stdout
            log(f"cache data files resident: {sum(int(x) for x in out.split()) / GIB:.2f} GiB")


if __name__ == "__main__":
    main()
