"""The contenders, each behind one small interface the workloads share:

- `HubfsMount`: `hubfs mount` with its own cache directory (fresh = cold), the daemon's pid for
  RSS sampling, `hubfs status --json` for counters and `hubfs sync` for writable mounts; always
  unmounted on exit.
- `HfFuseMount`: HfFileSystem mounted with `python -m fsspec.fuse` (fusepy) as a separate
  process, the Python peer doing hubfs's job; always unmounted and stopped on exit.
- `curl_get`: one curl stream following the resolve redirect.
- `peer_python`: runs `peer_hf.py` / `st_load.py` (huggingface_hub, safetensors) in a fresh
  process with its own HF_HOME (and a token for uploads) and reads the JSON line it prints.
- `cat_files`: `cat FILE > /dev/null` for any mounted or local path, with a time cap for slow
  contenders (then the bytes read so far come from /proc/PID/io)."""

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .util import (BENCH_DIR, HUBFS, MIB, PYTHON, BenchError, clean_env, force_unmount,
                   is_mounted, pid_alive, run, tail, wait_until)

HUBFS_NAME = "hubfs"
# hubfs on a Xet-era Hub with `--no-xet`: Xet files read through the Hub's bridge.
HUBFS_BRIDGE = "hubfs --no-xet (bridge)"
CURL = "curl"
HF = "huggingface_hub"
HFFUSE = "HfFileSystem+fsspec.fuse"
LOCAL = "local copy"
# hubfs nodes with local caches only (the peer of hubfs + --shared-cache in the cluster workload).
HUBFS_ALONE = "hubfs, local caches only"
CONTENDERS = [HUBFS_NAME, HUBFS_BRIDGE, CURL, HF, HFFUSE, LOCAL, HUBFS_ALONE]


def hf_source(repo: str, repo_type: str) -> str:
    return repo if repo_type == "model" else f"{repo_type}s/{repo}"


class HubfsMount:
    """A hubfs mount of `source` on `mountpoint` using `cache_dir`; with a write `token`, a
    branch mount is writable."""

    def __init__(self, emulator, source: str, mountpoint: Path, cache_dir: Path, hf_home: Path,
                 token: str = "", args=(), env_extra=None):
        self.args = list(args)
        self.env_extra = dict(env_extra or {})
        self.emulator = emulator
        self.source = source
        self.path = mountpoint
        self.cache_dir = cache_dir
        self.hf_home = hf_home
        self.token = token
        self.pid = None
        self.mount_seconds = None

    def env(self) -> dict:
        # Reads are anonymous (HF_TOKEN empty): the benchmark repos are public, as for every
        # contender. The token goes through the environment, never the command line.
        return clean_env(HF_TOKEN=self.token, HF_HOME=self.hf_home, **self.env_extra)

    def command(self) -> list:
        return [HUBFS, "mount", self.source, self.path, "--endpoint", self.emulator.url,
                "--cache-dir", self.cache_dir, *self.args]

    def __enter__(self):
        self.path.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        try:
            run(self.command(), timeout=60, env=self.env())
        except BenchError:
            force_unmount(self.path)
            raise
        self.mount_seconds = time.perf_counter() - t0
        self.pid = self.daemon_pid()
        return self

    def daemon_pid(self) -> int | None:
        """The daemon writes its pid into the cache directory's lock file."""
        try:
            return int((self.cache_dir / "lock").read_text().strip())
        except (OSError, ValueError):
            return None

    def status(self) -> dict:
        r = run([HUBFS, "status", "--json", self.path], timeout=20, env=self.env())
        return json.loads(r.stdout)

    def sync(self, timeout: float):
        """`hubfs sync`: returns once everything staged has landed on the Hub."""
        run([HUBFS, "sync", "--timeout", str(int(timeout)), self.path], timeout=timeout + 30, env=self.env())

    def __exit__(self, *exc):
        if is_mounted(self.path):
            try:
                run([HUBFS, "unmount", self.path], timeout=30, env=self.env())
            except BenchError:
                pass
            force_unmount(self.path)
        if self.pid is not None:
            wait_until(lambda: not pid_alive(self.pid), 15)


class HfFuseMount:
    """`python -m fsspec.fuse hf:// REPO/ MOUNTPOINT -o endpoint=URL` in its own process, with
    the CLI's defaults (foreground, threads)."""

    def __init__(self, emulator, repo: str, repo_type: str, mountpoint: Path, hf_home: Path, log_path: Path):
        self.emulator = emulator
        self.repo_path = hf_source(repo, repo_type) + "/"
        self.path = mountpoint
        self.hf_home = hf_home
        self.log_path = log_path
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def env(self) -> dict:
        return clean_env(HF_HOME=self.hf_home, HF_ENDPOINT=self.emulator.url)

    def command(self) -> list:
        return [PYTHON, "-m", "fsspec.fuse", "hf://", self.repo_path, str(self.path),
                "-o", f"endpoint={self.emulator.url}"]

    def start(self):
        """Starts the process; the mount appears a moment later."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=err, env=self.env())

    def __enter__(self):
        self.start()
        if not wait_until(lambda: is_mounted(self.path) or self.proc.poll() is not None, 60):
            self.__exit__()
            raise BenchError("fsspec.fuse did not mount within 60 s")
        if not is_mounted(self.path):
            self.__exit__()
            raise BenchError(f"fsspec.fuse exited {self.proc.returncode}: {tail(self.log_path.read_text(errors='replace'))}")
        return self

    def __exit__(self, *exc):
        force_unmount(self.path)
        if self.proc is None:
            return
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@dataclass
class ReadResult:
    seconds: float
    bytes: int
    partial: bool  # stopped at the time cap

    @property
    def mib_s(self) -> float:
        return self.bytes / MIB / self.seconds


def _rchar(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cat_files(paths, cap_s: float) -> ReadResult:
    """`cat PATH > /dev/null` for every path at once; wall time until the last one finishes. A
    reader still running at `cap_s` is stopped and counted with the bytes it had read.

    The waits block in waitpid (no polling: a polled wait would add up to 50 ms to a 0.2 s
    page-cache read); a timer stops readers at the cap."""
    sizes = [os.path.getsize(p) for p in paths]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["cat", str(p)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for p in paths]
    read_at_cap = {}

    def stop_at_cap():
        for p in procs:
            if p.returncode is None:
                read_at_cap[p.pid] = _rchar(p.pid)
                p.send_signal(signal.SIGKILL)

    timer = threading.Timer(cap_s, stop_at_cap)
    timer.start()
    try:
        for p in procs:
            p.wait()
        end = time.perf_counter()
    finally:
        timer.cancel()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    done, partial = 0, False
    for p, size in zip(procs, sizes):
        if p.returncode == 0:
            done += size
        elif p.pid in read_at_cap:
            done += read_at_cap[p.pid]
            partial = True
        else:
            raise BenchError(f"cat exited {p.returncode}: {tail(p.stderr.read().decode(errors='replace'))}")
    if partial:
        end = min(end, t0 + cap_s)
    return ReadResult(end - t0, done, partial)


def curl_get(url: str, timeout: float, byte_range: str | None = None) -> tuple[float, int]:
    """One curl stream, following the redirect; returns (curl's total time, bytes received)."""
    cmd = ["curl", "-sS", "-L", "--fail", "-o", "/dev/null", "-w", "%{time_total} %{size_download}"]
    if byte_range:
        cmd += ["-r", byte_range]
    r = run(cmd + [url], timeout=timeout)
    seconds, size = r.stdout.split()
    return float(seconds), int(size)


def cdn_location(url: str) -> str:
    """The signed CDN URL a resolve request redirects to (what hubfs remembers per file)."""
    r = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{redirect_url}", url], timeout=30)
    if not r.stdout.startswith("http"):
        raise BenchError(f"no redirect from {url}")
    return r.stdout.strip()


def peer_python(script: str, args: list, hf_home: Path, endpoint: str, timeout: float,
                token: str | None = None, xet: bool = False) -> dict:
    """Runs scripts/bench/SCRIPT with a fresh-or-given HF_HOME; returns its JSON answer. With
    `xet`, the client transfers through Xet (hf_xet, its cache under HF_HOME) instead of LFS."""
    env = clean_env(HF_HOME=hf_home, HF_ENDPOINT=endpoint)
    if xet:
        env.pop("HF_HUB_DISABLE_XET", None)
        env["HF_XET_CACHE"] = str(Path(hf_home) / "xet")
    if token:
        env["HF_TOKEN"] = token
    r = run([PYTHON, BENCH_DIR / script, *args], timeout=timeout, env=env)
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"{script} printed no result: {tail(r.stdout + r.stderr)}")
    return json.loads(lines[-1])
