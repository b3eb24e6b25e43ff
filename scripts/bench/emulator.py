"""The Hub emulator as a benchmark fixture: a `hub-emulator` process on a data directory, its
URLs, and its `/_emulator/stats` counters (what a contender really fetched)."""

import hashlib
import json
import re
import subprocess
import threading
import urllib.request
from pathlib import Path

from .util import HUB_EMULATOR, BenchError, log

# The one user of the benchmark emulator; its namespace holds every benchmark repo.
USER = "bench"
WRITE_TOKEN = "hf_bench_write_token_0123456789"


class Emulator:
    """`hub-emulator --data DATA` with optional shaping flags; a context manager. Legacy (`--no-xet`)
    unless `xet`: only the Xet workload (`w_xet`) runs a Xet-era emulator, on data of its own."""

    def __init__(self, name: str, data_dir: Path, log_path: Path, shaping=(), xet: bool = False):
        self.name = name
        self.xet = xet
        self.data_dir = data_dir
        self.log_path = log_path
        self.shaping = list(shaping)
        self.proc = None
        self.url = None
        self.cdn = None

    def start(self) -> "Emulator":
        args = [HUB_EMULATOR, "--data", str(self.data_dir), "--listen", "127.0.0.1:0",
                "--token", f"{USER}:write:{WRITE_TOKEN}",
                # The LFS/bridge read path these workloads and their targets were defined on (a
                # Xet-era emulator would move every seeded file into its CAS, and hubfs would then
                # read through the CAS instead); the Xet rows of issue 12 start their own (xet=True).
                *([] if self.xet else ["--no-xet"]), *self.shaping]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
        # The ready line comes within a second; a watchdog kills a wedged start.
        watchdog = threading.Timer(60, self.proc.kill)
        watchdog.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            watchdog.cancel()
        m = re.match(r"listening on (http://\S+) \(cdn (http://\S+)\)", line)
        if not m:
            self.stop()
            raise BenchError(f"emulator {self.name} did not start ({line!r}); see {self.log_path}")
        self.url, self.cdn = m.group(1), m.group(2)
        log(f"emulator {self.name} at {self.url} {' '.join(self.shaping)}")
        return self

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/_emulator/stats", timeout=10) as r:
            return json.loads(r.read())

    def bytes_served(self) -> int:
        return self.stats()["bytes_served"]

    def stored_object(self, original) -> Path:
        """The emulator's copy of a seed original (an LFS object, named by its sha256)."""
        digest = _sha256_of(Path(original))
        obj = self.data_dir / "objects" / "lfs" / digest[:2] / digest[2:]
        if not obj.exists():
            raise BenchError(f"no stored object for {original} in {self.data_dir}")
        return obj

    def warm(self, objects) -> None:
        """Reads stored objects (`stored_object`) into the page cache: the Hub's CDN serves hot
        files from memory, and here the stand-in server's disk reads would otherwise compete
        with the client's own disk (its cache writes, a local copy) on this machine's single
        disk."""
        for obj in objects:
            with open(obj, "rb", buffering=0) as f:
                while f.read(8 << 20):
                    pass

    def resolve_url(self, repo: str, path: str, repo_type: str = "model", revision: str = "main") -> str:
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        return f"{self.url}/{prefix}{repo}/resolve/{revision}/{path}"


_DIGESTS: dict = {}


def _sha256_of(path: Path) -> str:
    """sha256 of a seed original, computed once per run."""
    key = str(path)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(8 << 20):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]
