"""Paths, subprocesses with timeouts, page-cache dropping and mount checks shared by every
benchmark module. Every external command goes through `run` or `Proc`, so none can hang the run."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
HUBFS = os.environ.get("HUBFS", str(TARGET / "release" / "hubfs"))
HUB_EMULATOR = os.environ.get("HUB_EMULATOR", str(TARGET / "release" / "hub-emulator"))
PYTHON = sys.executable
BENCH_DIR = Path(__file__).resolve().parent

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30


class BenchError(Exception):
    """A measurement that could not be taken; reported in its table cell, never fatal."""


def log(msg: str):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def tail(text: str, n: int = 400) -> str:
    text = (text or "").strip().replace("\n", " | ")
    return text[-n:]


def run(cmd, timeout: float, env=None, cwd=None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """Runs `cmd` to completion; raises BenchError on a timeout or a non-zero exit."""
    try:
        r = subprocess.run([str(c) for c in cmd], stdout=stdout, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{Path(str(cmd[0])).name} timed out after {timeout:.0f} s") from e
    if r.returncode != 0:
        raise BenchError(f"{Path(str(cmd[0])).name} exited {r.returncode}: {tail(r.stderr)}")
    return r


def timed(cmd, timeout: float, env=None) -> tuple[float, subprocess.CompletedProcess]:
    """Wall-clock seconds of `run(cmd)`."""
    t0 = time.perf_counter()
    r = run(cmd, timeout, env=env)
    return time.perf_counter() - t0, r


def drop_caches():
    """Empties the OS page cache (needs root): `sync; echo 3 > /proc/sys/vm/drop_caches`."""
    run(["sync"], timeout=120)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        raise BenchError(f"cannot drop the page cache ({e}); run as root") from e


# This VM's host takes back guest memory that sits free (free page reporting) and backs a page
# again only when it is next written: ~3 s per GiB, charged to whichever process touches the
# page first. A cold read through FUSE first touches its page cache in the daemon's reply copy
# (4 files unshaped: 6.3 CPU-s per GiB, against 1.7-2.3 with backed pages, same binary, same
# hour); a local disk read has its pages filled by the host's DMA and pays nothing in the guest.
# So before each cold read every contender gets backed free pages (`fresh_memory`): the figures
# are the software's, as on a machine that does not lend its memory out. `--no-pretouch`
# measures the VM as it is.
PRETOUCH = True
# Free memory touched beyond the bytes a run reads: the daemon's buffers, the peers' processes.
PRETOUCH_MARGIN = GIB
_ONE_MIB = b"\1" * MIB


def fresh_memory(nbytes: int) -> None:
    """Writes every page of `nbytes` of anonymous memory, then frees it: the guest's free lists
    then hold pages its host has just backed. Not timed; logged."""
    if not PRETOUCH or nbytes <= 0:
        return
    import mmap
    t0 = time.monotonic()
    nbytes -= nbytes % MIB
    with mmap.mmap(-1, nbytes) as mem:
        for off in range(0, nbytes, MIB):
            mem[off:off + MIB] = _ONE_MIB
    log(f"pretouched {nbytes / GIB:.1f} GiB in {time.monotonic() - t0:.1f} s")


def _size(paths) -> int:
    return sum(os.path.getsize(p) for p in paths)


def cold_client(emu, originals, touch: bool = True):
    """A cold start for a network contender: the page cache dropped (no client-side cache
    survives), then the emulator's copies of `originals` read back into memory (`warm`), then
    backed free pages for the read (`fresh_memory`; `touch=False` for runs that read little)."""
    objects = [emu.stored_object(o) for o in originals]  # hashes the originals before the drop
    drop_caches()
    emu.warm(objects)
    if touch:
        fresh_memory(_size(originals) + PRETOUCH_MARGIN)


def cold_local(paths, nbytes: int | None = None):
    """A cold start for a read of `nbytes` (default: the size of `paths`) from disk, or from a
    mount's cache on disk: the page cache dropped, then backed free pages for the read."""
    drop_caches()
    fresh_memory((_size(paths) if nbytes is None else nbytes) + PRETOUCH_MARGIN)


def is_mounted(path: Path) -> bool:
    target = str(Path(path).resolve())
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split(" ")[4].encode().decode("unicode_escape")
            if mp == target:
                return True
    return False


def mounts_under(root: Path) -> list[Path]:
    root = str(Path(root).resolve())
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split(" ")[4].encode().decode("unicode_escape")
            if mp == root or mp.startswith(root + "/"):
                found.append(Path(mp))
    return found


def wait_until(cond, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


def force_unmount(path: Path):
    """Plain umount, then a lazy one if something still holds the mount."""
    if not is_mounted(path):
        return
    subprocess.run(["umount", str(path)], capture_output=True, timeout=30)
    if not wait_until(lambda: not is_mounted(path), 5):
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)
        wait_until(lambda: not is_mounted(path), 10)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; its parent just has not reaped it.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def clean_env(**extra) -> dict:
    """The parent environment without any HF_* variable, plus `extra`: every contender gets
    exactly the Hub settings it is given and nothing inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_HUB_DISABLE_XET"] = "1"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def mib(n: float) -> float:
    return n / MIB
