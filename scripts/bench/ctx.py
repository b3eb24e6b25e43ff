"""The state one benchmark run shares across workloads: the two emulators, the seeded facts,
scratch directories (mountpoints, fresh caches, fresh HF_HOMEs, removed after use), the RSS
section every hubfs measurement feeds, and the hubfs counters kept for the report."""

import contextlib
import itertools
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import rss
from .contenders import HUBFS_NAME, HfFuseMount, HubfsMount
from .results import Figure, Section
from .util import BenchError, fresh_dir


@dataclass
class Diagnostic:
    """What the hubfs daemon did during one measurement (for "what limits hubfs")."""
    workload: str
    wall_s: float | None
    cpu_s: float | None
    emulator_cpu_s: float | None
    peak_rss_mib: float | None
    counters: dict  # `hubfs status --json` counters: what changed during the measurement
    # Share of all the machine's CPUs busy meanwhile: near 1.0, the run was CPU-bound.
    machine_busy: float | None = None


@dataclass
class Bench:
    shaped: object    # Emulator with --latency-ms 20 --bandwidth 50M
    unshaped: object  # Emulator on loopback, unshaped
    facts: object     # seed.Facts
    run_dir: Path
    log_dir: Path
    reps: int
    rss: Section = field(default_factory=lambda: Section(
        "Peak RSS (workload 7)",
        "VmRSS of the process serving the mount, sampled every 25 ms during the measurement "
        "(hubfs: the daemon; HfFileSystem: the fsspec.fuse process)."))
    diagnostics: list = field(default_factory=list)
    # RSS row label -> (limit in MiB, target text), checked by finish_rss.
    rss_limits: dict = field(default_factory=dict)
    _seq: itertools.count = field(default_factory=itertools.count)

    def scratch(self, name: str) -> Path:
        return fresh_dir(self.run_dir / f"{name}-{next(self._seq)}")

    @contextlib.contextmanager
    def temp_dir(self, name: str):
        d = self.scratch(name)
        try:
            yield d
        finally:
            shutil.rmtree(d, ignore_errors=True)

    @contextlib.contextmanager
    def hubfs(self, emulator, source: str, cache_dir: Path | None = None, token: str = "", args=(),
              env_extra=None):
        """A hubfs mount; with no `cache_dir`, a fresh one removed afterwards (a cold run); with
        a write `token`, writable (on a branch)."""
        with contextlib.ExitStack() as stack:
            if cache_dir is None:
                cache_dir = stack.enter_context(self.temp_dir("hubfs-cache"))
            mountpoint = self.scratch("mnt")
            hf_home = self.scratch("hf-home-hubfs")
            try:
                with HubfsMount(emulator, source, mountpoint, cache_dir, hf_home, token, args, env_extra) as m:
                    yield m
            finally:
                # The daemon's log lives in its cache dir, which a cold run deletes: keep it
                # beside the emulators' logs, for whatever the counters do not explain.
                daemon_log = cache_dir / "hubfs.log"
                if daemon_log.exists():
                    shutil.copyfile(daemon_log, self.log_dir / f"hubfs-{mountpoint.name}.log")

    @contextlib.contextmanager
    def hffuse(self, emulator, repo: str, repo_type: str = "model"):
        with self.temp_dir("hf-home-fuse") as hf_home:
            mountpoint = self.scratch("mnt")
            log = self.log_dir / "fsspec-fuse.log"
            with HfFuseMount(emulator, repo, repo_type, mountpoint, hf_home, log) as m:
                yield m

    @contextlib.contextmanager
    def observe(self, workload: str, contender: str, mount, rss_limit_mib: float | None = None,
                limit_text: str = ""):
        """Samples `mount`'s serving process during the block; feeds the RSS section and, for
        hubfs, keeps what the daemon did meanwhile (counter deltas, its and the emulator's CPU)."""
        sampler = rss.Sampler(mount.pid)
        emulator_pid = mount.emulator.proc.pid
        hubfs = contender == HUBFS_NAME
        before = self._status(mount) if hubfs else {}
        emu_cpu0 = rss.cpu_seconds(emulator_pid)
        busy0 = rss.machine_busy_seconds()
        t0 = time.perf_counter()
        with sampler:
            yield sampler
        wall = time.perf_counter() - t0
        busy1 = rss.machine_busy_seconds()
        emu_cpu1 = rss.cpu_seconds(emulator_pid)
        row = self._rss_row(workload, rss_limit_mib, limit_text)
        row.figures[contender] = Figure(sampler.peak_mib,
                                        note="" if sampler.cpu_s is None else f"CPU {sampler.cpu_s:.1f} s")
        if hubfs:
            counters = _delta(before, self._status(mount))
            emu_cpu = None if emu_cpu0 is None or emu_cpu1 is None else emu_cpu1 - emu_cpu0
            busy = (None if busy0 is None or busy1 is None or wall <= 0
                    else (busy1 - busy0) / (wall * (os.cpu_count() or 1)))
            self.diagnostics.append(Diagnostic(workload, wall, sampler.cpu_s, emu_cpu, sampler.peak_mib, counters,
                                               busy))

    @staticmethod
    def _status(mount) -> dict:
        try:
            return mount.status()
        except BenchError as e:
            return {"error": str(e)}

    def _rss_row(self, workload: str, rss_limit_mib, limit_text):
        for r in self.rss.rows:
            if r.label == workload:
                return r
        if rss_limit_mib is not None:
            self.rss_limits[workload] = (rss_limit_mib, limit_text)
        return self.rss.row(workload, "MiB", higher_is_better=False, digits=0)

    def finish_rss(self):
        """Checks the RSS targets once every figure is in."""
        for r in self.rss.rows:
            if r.label in self.rss_limits:
                limit, text = self.rss_limits[r.label]
                r.check_value(HUBFS_NAME, text, lambda v, limit=limit: v < limit)


def _delta(before: dict, after: dict) -> dict:
    """after - before for every numeric counter of the status' `read`, `hub` and `cache` parts."""
    out = {}
    for part in ("read", "hub", "cache"):
        a, b = after.get(part) or {}, before.get(part) or {}
        out[part] = {k: v - b.get(k, 0) for k, v in a.items() if isinstance(v, (int, float))}
    return out

