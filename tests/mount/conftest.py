"""Fixtures for real-mount tests: a Hub emulator, repos seeded with the official client, and
`hubfs mount` / unmount around each test. Everything runs against 127.0.0.1 only.

The official client is used as installed: it uploads through Xet (hf_xet), so the mounts read
Xet-backed files, as on huggingface.co today. `HUBFS_TEST_LEGACY_HUB=1` runs the suite against a
pre-Xet Hub instead (every emulator gets `--no-xet`, the client HF_HUB_DISABLE_XET=1)."""

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
HUBFS = os.environ.get("HUBFS", str(TARGET / "release" / "hubfs"))
EMULATOR = os.environ.get("HUB_EMULATOR", str(TARGET / "release" / "hub-emulator"))

WRITE_TOKEN = "hf_alice_write_0123456789"
READ_TOKEN = "hf_bob_read_0123456789"
OTHER_TOKEN = "hf_carol_write_0123456789"
# Small tree pages so listings of test repos cross page boundaries.
PAGE_SIZE = 50
LEGACY_HUB = os.environ.get("HUBFS_TEST_LEGACY_HUB") == "1"


class Emulator:
    def __init__(self, data_dir: Path, extra_args=()):
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.proc = None
        self.url = None
        self.cdn = None

    def start(self):
        tokens = self.data_dir / "tokens.txt"
        tokens.write_text(f"alice:write:{WRITE_TOKEN}\nbob:read:{READ_TOKEN}\ncarol:write:{OTHER_TOKEN}\n")
        args = [
            EMULATOR, "--data", str(self.data_dir), "--listen", "127.0.0.1:0",
            "--token-file", str(tokens),
            "--org", "acme:alice",
            "--page-size", str(PAGE_SIZE),
            *(["--no-xet"] if LEGACY_HUB else []),
            *self.extra_args,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(self.data_dir / "emulator.log", "ab"), text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"listening on (http://\S+) \(cdn (http://\S+)\)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.url, self.cdn = m.group(1), m.group(2)
        return self

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def _control(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if raw.strip() else None

    def stats(self):
        return self._control("GET", "/_emulator/stats")

    def set_faults(self, *specs):
        return self._control("POST", "/_emulator/faults", {"faults": list(specs)})

    def clear_faults(self):
        return self._control("DELETE", "/_emulator/faults")

    def shaping(self, latency_ms=0, bandwidth=None):
        return self._control("POST", "/_emulator/shaping", {"latency_ms": latency_ms, "bandwidth": bandwidth})


@pytest.fixture(scope="session")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="hubfs-tests-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def emulator(workdir):
    data = workdir / "emulator"
    data.mkdir()
    emu = Emulator(data).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def api(emulator, workdir):
    client_env(workdir)
    from huggingface_hub import HfApi
    return HfApi(endpoint=emulator.url, token=WRITE_TOKEN)


def client_env(workdir):
    """The official client's environment in this process: Xet as installed (or off on a legacy
    Hub), and an HF_HOME of the session's own, so hf_xet's shard cache never remembers chunks
    from another run's emulator (it would skip uploading them)."""
    if LEGACY_HUB:
        os.environ["HF_HUB_DISABLE_XET"] = "1"
    else:
        os.environ.pop("HF_HUB_DISABLE_XET", None)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    os.environ["HF_HOME"] = str(workdir / "hf-home")
    os.environ["HF_XET_CACHE"] = str(workdir / "hf-home" / "xet")
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"


def hubfs_env(token=None, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_TOKEN"] = token or ""
    env["HF_HOME"] = str(Path(tempfile.gettempdir()) / "hubfs-tests-hfhome")
    env.setdefault("RUST_LOG", "hubfs=debug,warn")
    env.update(extra)
    return env


class Mount:
    def __init__(self, path: Path, log: Path, cache_dir: Path):
        self.path = path
        self.log = log
        self.cache_dir = cache_dir

    def __truediv__(self, other):
        return self.path / other

    def status(self):
        out = subprocess.run([HUBFS, "status", "--json", str(self.path)], capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def unmount(self):
        if is_mounted(self.path):
            r = subprocess.run([HUBFS, "unmount", str(self.path)], capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
        wait_until(lambda: not is_mounted(self.path), 30)


def is_mounted(path: Path) -> bool:
    target = str(Path(path).resolve())
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split(" ")[4].encode().decode("unicode_escape")
            if mp == target:
                return True
    return False


def wait_until(cond, timeout, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


def run_mount(source, mountpoint, emulator, token=None, cache_dir=None, args=(), env_extra=None, timeout=60):
    mountpoint.mkdir(parents=True, exist_ok=True)
    cmd = [HUBFS, "mount", source, str(mountpoint), "--endpoint", emulator.url]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    cmd += list(args)
    return subprocess.run(cmd, capture_output=True, text=True, env=hubfs_env(token, **(env_extra or {})), timeout=timeout)


@pytest.fixture
def mount(emulator, tmp_path):
    """Factory: mount(source, token=..., cache_dir=..., args=[...]) -> Mount, unmounted at teardown."""
    mounts = []

    def _mount(source, token=WRITE_TOKEN, cache_dir=None, args=(), env_extra=None, name=None):
        mp = tmp_path / (name or f"mnt{len(mounts)}")
        cache = cache_dir or (tmp_path / f"cache{len(mounts)}")
        log = cache / "hubfs.log"
        r = run_mount(source, mp, emulator, token=token, cache_dir=cache, args=args, env_extra=env_extra)
        assert r.returncode == 0, f"mount {source} failed: {r.stderr}\n{log.read_text() if log.exists() else ''}"
        assert is_mounted(mp)
        m = Mount(mp, log, cache)
        mounts.append(m)
        return m

    yield _mount
    for m in mounts:
        m.unmount()


def bytes_served(emulator):
    return emulator.stats()["bytes_served"]


def sha(path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks (files of several GiB stay cheap)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def faults(emulator, *specs):
    emulator.set_faults(*specs)
    try:
        yield
    finally:
        emulator.clear_faults()


@pytest.fixture(scope="session")
def originals(workdir):
    return workdir / "originals"


@pytest.fixture(scope="session")
def seeded(api, originals):
    from seed import seed
    return seed(api, originals)
