"""Fidelity suite: drives the hub-emulator with the official huggingface_hub client.

The emulator is started in `pytest_configure`, before test modules import huggingface_hub,
because huggingface_hub reads HF_ENDPOINT, HF_HUB_DISABLE_XET and friends once at import time.
That is also why a run has one mode, chosen with `--hub-mode` (or $HUBFS_FIDELITY_MODE):

* `xet` (default): the Xet-era emulator and the client as users install it (hf_xet on): uploads
  go through xet-write-token + the CAS, downloads of Xet files through hf_xet's reconstructions.
* `noxet`: the same emulator, `HF_HUB_DISABLE_XET=1`: a legacy client on today's Hub (LFS batch
  uploads that the Hub migrates to Xet, downloads through the resolve bridge).
* `legacy`: `hub-emulator --no-xet` and `HF_HUB_DISABLE_XET=1`: a pre-Xet Hub. hf_xet cannot
  upload to it at all (no fallback in huggingface_hub), exactly as against a real pre-Xet server.

A test that only means something in some modes says so with `@pytest.mark.modes(...)`; in the
other modes it is deselected (reported as such, never counted as passed).
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

MODES = ("xet", "noxet", "legacy")

_state = {}


def pytest_addoption(parser):
    parser.addoption(
        "--hub-mode",
        choices=MODES,
        default=os.environ.get("HUBFS_FIDELITY_MODE", "xet"),
        help="xet: client as installed; noxet: HF_HUB_DISABLE_XET=1; legacy: --no-xet emulator too",
    )


def emulator_args(mode, *extra):
    """The suite's emulator command line for `mode` (tests starting their own emulator reuse it)."""
    args = [
        "--token", f"alice:write:{WRITE}",
        "--token", f"alice:read:{READ}",
        "--token", f"bob:write:{BOB}",
        "--token", f"carol:read:{CAROL}",
        "--org", "acme:alice",
        "--page-size", str(PAGE_SIZE),
        "--multipart-threshold", str(MULTIPART_THRESHOLD),
        "--multipart-part-size", str(PART_SIZE),
    ]  # fmt: skip
    if mode == "legacy":
        args.append("--no-xet")
    # More emulator flags for a whole run, e.g. `--range-bound-urls` (scripts/test.sh runs the
    # suite again with it: the official client must work against a Hub that binds its URLs).
    args += os.environ.get("HUBFS_FIDELITY_EMULATOR_ARGS", "").split()
    return args + list(extra)


def client_env(mode):
    """Environment of the official client in `mode` (HF_HUB_DISABLE_XET set or removed)."""
    env = {
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
        "HF_HUB_ETAG_TIMEOUT": "10",
        "HF_HUB_DOWNLOAD_TIMEOUT": "20",
        # hf_xet's reqwest honours *_PROXY variables: never send loopback traffic to a proxy.
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    if mode != "xet":
        env["HF_HUB_DISABLE_XET"] = "1"
    return env


def pytest_configure(config):
    config.addinivalue_line("markers", "modes(*names): run this test only in these --hub-mode modes")
    config.addinivalue_line("markers", "budget(seconds): time limit of a long test (default 120 s)")
    mode = config.getoption("--hub-mode")
    home = tempfile.mkdtemp(prefix="hf-home-")
    emu = Emulator(emulator_args(mode))
    _state["emu"] = emu
    _state["home"] = home
    _state["mode"] = mode
    os.environ.pop("HF_HUB_DISABLE_XET", None)
    os.environ.update(client_env(mode))
    os.environ.update(
        {
            "HF_ENDPOINT": emu.url,
            "HF_HOME": home,
            "HF_XET_CACHE": os.path.join(home, "xet"),
        }
    )
    os.environ.pop("HF_TOKEN", None)


def pytest_report_header(config):
    return f"hub mode: {config.getoption('--hub-mode')}"


def pytest_collection_modifyitems(config, items):
    mode = config.getoption("--hub-mode")
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("modes")
        (keep if marker is None or mode in marker.args else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_unconfigure(config):
    emu = _state.pop("emu", None)
    if emu is not None:
        emu.stop()


@pytest.fixture(autouse=True)
def _bounded_time(request):
    """Every test must finish within 120 s, or the seconds its `budget` marker gives (a hung
    request fails the test, not the run)."""
    marker = request.node.get_closest_marker("budget")
    seconds = marker.args[0] if marker else 120

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def _isolated_hf_home(tmp_path, monkeypatch):
    """Each test gets its own HF_HOME and HF_XET_CACHE, so no cache (hub files, hf_xet's shard
    and chunk caches) leaks between tests and dedup figures mean what they say. huggingface_hub
    froze its constants at import; hf_xet reads the variables for every session."""
    from huggingface_hub import constants

    home = tmp_path / "hf-home"
    home.mkdir()
    xet = str(home / "xet")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_XET_CACHE", xet)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_ASSETS_CACHE", str(home / "assets"))
    monkeypatch.setattr(constants, "HF_XET_CACHE", xet)
    yield home


@pytest.fixture(scope="session")
def mode():
    """The run's --hub-mode: "xet", "noxet" or "legacy"."""
    return _state["mode"]


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


def new_repo_id(base):
    """A fresh `alice/<base>-<n>` id (the repo is not created)."""
    return f"alice/{base}-{next(_names)}"


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
