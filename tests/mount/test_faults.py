"""A misbehaving Hub: retried into correct bytes, or a clean EIO within a bounded time."""

import hashlib
import time

from conftest import faults, sha

# Scheduling slack on top of the I/O timeout for a loaded 2-core CI machine. The bounds below
# tell a clean EIO apart from what they guard against: a 600 s stall waited out, or retries
# without end (the pytest timeout would be the only bound then).
SLACK = 30


def test_5xx_429_and_cut_bodies_still_give_correct_bytes(seeded, originals, mount, emulator):
    want = hashlib.sha256((originals / "tiny-model/big.bin").read_bytes()).hexdigest()
    specs = [
        "route=content,every=3,status=503",
        "route=content,every=5,status=500",
        "route=content,every=4,status=429,retry-after=1",
        "route=cdn,every=2,cut-after=100000",
    ]
    for spec in specs:
        m = mount("alice/tiny-model")
        with faults(emulator, spec):
            assert sha(m / "big.bin") == want, spec
        st = m.status()
        assert st["hub"]["retries"] + st["read"]["fetch_resumes"] > 0, spec
        m.unmount()


def test_a_dead_server_gives_eio_not_a_hang(seeded, mount, emulator):
    m = mount("alice/tiny-model", args=["--io-timeout", "10"])
    with faults(emulator, "route=content,status=503"):
        start = time.time()
        try:
            (m / "big.bin").read_bytes()
            raise AssertionError("expected EIO")
        except OSError as e:
            assert e.errno == 5
        assert time.time() - start < 10 + SLACK
    # The 503s were retried before giving up (a first failure is not final).
    assert m.status()["hub"]["retries"] > 0, m.status()["hub"]


def test_a_stalled_server_gives_eio_within_the_timeout(seeded, mount, emulator):
    m = mount("alice/tiny-model", args=["--io-timeout", "5"])
    with faults(emulator, "route=content,stall=600"):
        start = time.time()
        try:
            with open(m / "model.safetensors", "rb") as f:
                f.read(100)
            raise AssertionError("expected EIO")
        except OSError as e:
            assert e.errno == 5
        assert time.time() - start < 5 + SLACK
