"""Start and stop a hub-emulator process for tests and scripts (no huggingface_hub import)."""

import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

READY = re.compile(r"^listening on (http://\S+) \(cdn (http://\S+)\)$")
ROOT = Path(__file__).resolve().parents[2]


def find_binary() -> str:
    """$HUB_EMULATOR, else $CARGO_TARGET_DIR/release/hub-emulator, else target/release/."""
    candidates = [os.environ.get("HUB_EMULATOR")]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(os.path.join(os.environ["CARGO_TARGET_DIR"], "release", "hub-emulator"))
    candidates.append(str(ROOT / "target" / "release" / "hub-emulator"))
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise RuntimeError("hub-emulator binary not found: build it with `cargo build --release`")


class Emulator:
    """A running emulator: `.url`, `.cdn_url`, `.data`; `.stop()` or use as a context manager."""

    def __init__(self, args, data=None, timeout=60.0):
        self._own_data = data is None
        self.data = data or tempfile.mkdtemp(prefix="hub-emulator-")
        self.args = list(args)
        self.log_path = os.path.join(self.data, "emulator.log") if self._own_data else None
        self.proc = None
        self.url = self.cdn_url = None
        self._start(timeout)

    def _start(self, timeout):
        log = open(self.log_path or os.devnull, "ab")
        self.proc = subprocess.Popen(
            [find_binary(), "--data", os.path.join(self.data, "store"), *self.args],
            stdout=subprocess.PIPE,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"hub-emulator did not start (log: {self.log_path})")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1)
                if not chunk:
                    continue
                line += chunk
        m = READY.match(line.decode().strip())
        if not m:
            self.stop()
            raise RuntimeError(f"unexpected ready line: {line!r}")
        self.url, self.cdn_url = m.group(1), m.group(2)

    def restart(self, timeout=60.0):
        """Stops and starts again on the same data dir (new ports)."""
        self.stop(remove=False)
        self._start(timeout)

    def stop(self, remove=True):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        if remove and self._own_data:
            shutil.rmtree(self.data, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
