"""Fidelity suite: drives the hub-emulator with the official huggingface_hub client.

The emulator is started in `pytest_configure`, before test modules import huggingface_hub,
because huggingface_hub reads HF_ENDPOINT and friends once at import time.
"""

import itertools
import json
import os
import signal
import sys
import tempfile
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from emulator_proc import Emulator  # noqa: E402

# Tokens: a writer (alice), alice's read token, a second writer (bob), a read-only user
# (carol), and an org (acme) alice belongs to.
WRITE = "hf_alice_write_0000"
READ = "hf_alice_read_0000"
BOB = "hf_bob_write_0000"
CAROL = "hf_carol_read_0000"
PAGE_SIZE = 5
MULTIPART_THRESHOLD = 1 << 20  # 1 MiB
PART_SIZE = 256 << 10  # 256 KiB

_state = {}


def pytest_configure(config):
    home = tempfile.mkdtemp(prefix="hf-home-")
    emu = Emulator(
        [
            "--token", f"alice:write:{WRITE}",
            "--token", f"alice:read:{READ}",
            "--token", f"bob:write:{BOB}",
            "--token", f"carol:read:{CAROL}",
            "--org", "acme:alice",
            "--page-size", str(PAGE_SIZE),
            "--multipart-threshold", str(MULTIPART_THRESHOLD),
            "--multipart-part-size", str(PART_SIZE),
        ]
    )
    _state["emu"] = emu
    _state["home"] = home
    os.environ.update(
        {
            "HF_ENDPOINT": emu.url,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
            "HF_HOME": home,
            "HF_HUB_ETAG_TIMEOUT": "10",
            "HF_HUB_DOWNLOAD_TIMEOUT": "20",
        }
    )
    os.environ.pop("HF_TOKEN", None)


def pytest_unconfigure(config):
    emu = _state.pop("emu", None)
    if emu is not None:
        emu.stop()


@pytest.fixture(autouse=True)
def _bounded_time():
    """Every test must finish within 120 s (a hung request fails the test, not the run)."""

    def on_alarm(signum, frame):
        raise TimeoutError("test exceeded 120 s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def emulator():
    return _state["emu"]


@pytest.fixture(scope="session")
def endpoint(emulator):
    return emulator.url


@pytest.fixture(scope="session")
def api():
    from huggingface_hub import HfApi

    return HfApi(token=WRITE)


@pytest.fixture(scope="session")
def api_read():
    from huggingface_hub import HfApi

    return HfApi(token=READ)


@pytest.fixture(scope="session")
def api_bob():
    from huggingface_hub import HfApi

    return HfApi(token=BOB)


@pytest.fixture(scope="session")
def api_carol():
    from huggingface_hub import HfApi

    return HfApi(token=CAROL)


@pytest.fixture(scope="session")
def api_anon():
    from huggingface_hub import HfApi

    return HfApi(token=False)


_names = itertools.count()


@pytest.fixture
def new_repo(api, request):
    """Factory: creates `alice/<test>-<n>` and returns its id."""

    def make(repo_type="model", private=False, **kwargs):
        base = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:60].strip("-")
        repo_id = f"alice/{base}-{next(_names)}"
        api.create_repo(repo_id, repo_type=repo_type, private=private, **kwargs)
        return repo_id

    return make


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "cache")


def control(path, body=None, method=None):
    """Calls a `/_emulator/...` control route; returns the decoded JSON."""
    url = _state["emu"].url + path
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


@pytest.fixture
def stats():
    """`stats()` returns the emulator counters; `stats.reset()` zeroes them."""

    class Stats:
        def __call__(self):
            return control("/_emulator/stats")

        def reset(self):
            control("/_emulator/stats/reset", b"")

    return Stats()
