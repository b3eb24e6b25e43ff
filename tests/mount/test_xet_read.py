"""Xet files read through the CAS: a repo seeded with the official client and hf_xet (no
HF_HUB_DISABLE_XET), read through a hubfs mount byte-exact, lazily (a 4 KiB pread moves about
one xorb range, not the file), verified chunk by chunk (a corrupted xorb never yields bad bytes),
and still fine through mmap and safetensors."""

import errno
import json
import mmap
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from conftest import HUBFS, WRITE_TOKEN, faults, hubfs_env, sha, wait_until

# Reads through the CAS: a legacy (--no-xet) Hub has none; deselected under HUBFS_TEST_LEGACY_HUB=1.
pytestmark = pytest.mark.needs_xet

MIB = 1 << 20
SIZE = 6 << 20

SEED = r"""
import sys
from huggingface_hub import HfApi

endpoint, token, repo = sys.argv[1:4]
api = HfApi(endpoint=endpoint, token=token)
api.create_repo(repo, exist_ok=True)
for local, remote in zip(sys.argv[4::2], sys.argv[5::2]):
    api.upload_file(path_or_fileobj=local, path_in_repo=remote, repo_id=repo)
"""


def isolated_client_env():
    """The environment of an official-client child process: no HF_* of this one (the session's
    `api` fixture disables Xet), and its own HF_HOME, so hf_xet's caches do not leak between
    tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    home = tempfile.mkdtemp(prefix="hubfs-xet-home-")
    env.update(HF_HOME=home, HF_XET_CACHE=str(Path(home) / "xet"), NO_PROXY="127.0.0.1,localhost",
               HF_HUB_DISABLE_TELEMETRY="1")
    return env


def seed_with_xet(emulator, repo, files):
    """Uploads `files` ({path in repo: local path}) with huggingface_hub + hf_xet, in a child
    process (`isolated_client_env`)."""
    env = isolated_client_env()
    args = [sys.executable, "-c", SEED, emulator.url, WRITE_TOKEN, repo]
    for remote, local in files.items():
        args += [str(local), remote]
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def xet_repo(emulator, tmp_path_factory):
    d = tmp_path_factory.mktemp("xet-originals")
    rng = np.random.default_rng(12)
    big = d / "big.bin"
    big.write_bytes(rng.integers(0, 256, SIZE, dtype=np.uint8).tobytes())
    tensors = {f"layer{i}.weight": rng.standard_normal((256, 512)).astype(np.float32) for i in range(6)}
    st = d / "model.safetensors"
    save_file(tensors, str(st))
    repo = "alice/xet-read"
    seed_with_xet(emulator, repo, {"big.bin": big, "model.safetensors": st})
    return repo, {"big.bin": big, "model.safetensors": st}, tensors


def cas_stats(emulator):
    s = emulator.stats()
    return s["cas_bytes_served"], s["xorb_fetches"]


def pread_direct(path, off, n=4096):
    """One O_DIRECT read on a handle of its own: no page cache, and no read of one call
    continues another's run (no hubfs read-ahead), so it is one block run."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def test_tree_lists_xet_hash(xet_repo, api):
    """The emulator lists the seeded files with a xetHash: the premise of every test below."""
    repo, _, _ = xet_repo
    entries = {e.path: e for e in api.list_repo_tree(repo)}
    assert entries["big.bin"].xet_hash


def test_cat_and_sha256_are_byte_exact_through_the_cas(xet_repo, mount, emulator):
    repo, local, _ = xet_repo
    m = mount(repo)
    os.listdir(m.path)
    before_cas, before_fetches = cas_stats(emulator)
    before_bridge = emulator.stats()["bytes_served"]
    assert sha(m / "big.bin") == sha(local["big.bin"])
    out = subprocess.run(["cat", str(m / "big.bin")], capture_output=True, check=True).stdout
    assert out == local["big.bin"].read_bytes()
    cas, fetches = cas_stats(emulator)
    assert cas - before_cas >= SIZE * 0.9, "the bytes came from the CAS"
    assert fetches > before_fetches
    assert emulator.stats()["bytes_served"] - before_bridge < SIZE // 2, "not through the bridge"
    st = m.status()
    print(f"cat + sha256sum: CAS served {cas - before_cas} bytes in {fetches - before_fetches} xorb fetches; xet {st['xet']}")
    assert st["xet"]["reads"] > 0 and st["xet"]["fallbacks"] == 0
    assert st["xet"]["chunks_verified"] > 0


def test_a_file_read_whole_from_the_cas_is_checked_by_its_chunk_hashes(xet_repo, mount):
    """Every block from the CAS: the whole-file check is the file's Xet hash recomputed from the
    (already verified) chunk lists of the CAS runs, so the bytes are not hashed a second time
    with sha256; the verdict is reached before the reader gets the last block."""
    repo, local, _ = xet_repo
    m = mount(repo)
    os.listdir(m.path)
    assert sha(m / "big.bin") == sha(local["big.bin"])
    st = m.status()
    print(f"whole read: xet {st['xet']}; read {st['read']}")
    assert st["xet"]["chain_verified"] == 1, "checked over the chunk lists"
    assert st["xet"]["chain_abandoned"] == 0, "no block came from elsewhere"
    assert st["xet"]["fallbacks"] == 0
    assert st["read"]["verified_blobs"] >= 1 and st["read"]["verify_failures"] == 0
    # Reads over several blocks of one CAS run are answered with a slice of its buffer.
    assert st["xet"]["replies_without_copy"] > 0


def test_a_cas_answering_with_another_files_plan_never_passes(emulator, mount, tmp_path_factory):
    """A CAS that answers the reconstruction of one file with that of another of the same size:
    every chunk passes its hash (they are real chunks), but the chain of chunks does not hash to
    the file's xetHash, so a sequential reader gets EIO, never a complete wrong copy."""
    d = tmp_path_factory.mktemp("xet-twins")
    rng = np.random.default_rng(7)
    files = {}
    for name in ("a.bin", "b.bin"):
        files[name] = d / name
        files[name].write_bytes(rng.integers(0, 256, 3 * MIB + 777, dtype=np.uint8).tobytes())
    repo = "alice/xet-twins"
    seed_with_xet(emulator, repo, files)
    tree = {e["path"]: e for e in json.loads(urllib.request.urlopen(
        f"{emulator.url}/api/models/{repo}/tree/main", timeout=30).read())}
    a, b = tree["a.bin"]["xetHash"], tree["b.bin"]["xetHash"]
    m = mount(repo)
    os.listdir(m.path)
    with faults(emulator, f"route=cas,path=reconstructions,rewrite={a}:{b}"):
        with pytest.raises(OSError) as e:
            with open(m / "a.bin", "rb") as f:
                f.read()
    assert e.value.errno == errno.EIO
    st = m.status()
    print(f"lying plans: xet {st['xet']}; read {st['read']}")
    assert st["read"]["verify_failures"] >= 1
    assert st["xet"]["chain_verified"] >= 1, "caught by the chain check"
    assert st["xet"]["reads"] > 0 and st["xet"]["fallbacks"] == 0, "every run came from the CAS"


def test_4k_pread_moves_about_one_chunk_range(xet_repo, mount, emulator):
    repo, local, _ = xet_repo
    m = mount(repo)
    os.listdir(m.path)
    before, before_fetches = cas_stats(emulator)
    off = SIZE // 2 + 12345
    fd = os.open(m / "big.bin", os.O_RDONLY)
    try:
        got = os.pread(fd, 4096, off)
    finally:
        os.close(fd)
    assert got == local["big.bin"].read_bytes()[off:off + 4096]
    moved = cas_stats(emulator)[0] - before
    print(f"4 KiB pread moved {moved} bytes from the CAS in {cas_stats(emulator)[1] - before_fetches} xorb fetches")
    # One cache block (1 MiB by default) of chunks, at most a chunk or two over at each edge:
    # far from the 6 MiB file.
    assert 0 < moved <= (1 << 20) + (512 << 10), moved
    assert cas_stats(emulator)[1] - before_fetches <= 4


def test_mmap_and_safetensors(xet_repo, mount):
    repo, local, tensors = xet_repo
    m = mount(repo)
    os.listdir(m.path)
    with safe_open(str(m / "model.safetensors"), framework="numpy") as f:
        for name, t in tensors.items():
            assert np.array_equal(f.get_tensor(name), t)
    want = local["big.bin"].read_bytes()
    with open(m / "big.bin", "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        for off in (0, 4097, SIZE // 3, SIZE - 10):
            assert mm[off:off + 10] == want[off:off + 10]


def test_corrupted_xorb_never_gives_bad_bytes(xet_repo, mount, emulator):
    """The CAS flips a byte in every xorb range it serves: no chunk passes its hash, so hubfs
    reads through the bridge (counted) and the reader gets the right bytes."""
    repo, local, _ = xet_repo
    m = mount(repo)
    os.listdir(m.path)
    with faults(emulator, "route=xorb,corrupt=1"):
        assert sha(m / "big.bin") == sha(local["big.bin"])
    st = m.status()["xet"]
    print(f"corrupted xorbs: xet {st}")
    assert st["verify_failures"] > 0
    assert st["fallbacks"] > 0
    # Bridge bytes are not covered by chunk hashes: the whole-file check hashed the bytes.
    assert st["chain_abandoned"] > 0


def test_a_chunk_that_unpacks_to_another_length_never_gives_bad_bytes(xet_repo, mount, emulator):
    """The CAS flips the first chunk header's uncompressed length in every xorb range it serves:
    each run now decompresses to another size than its verified footer says. hubfs asks
    xet-client for the footer's length, so the run is refused as it arrives (retried, then read
    through the bridge): both files come out byte-exact, a raw (random) one and a compressed
    (safetensors) one, in bounded time, and no wrong byte ever reaches the reader."""
    repo, local, _ = xet_repo
    m = mount(repo)
    os.listdir(m.path)
    t0 = time.monotonic()
    with faults(emulator, "route=xorb,corrupt-at=5"):
        for name in ("big.bin", "model.safetensors"):
            assert sha(m / name) == sha(local[name]), name
    took = time.monotonic() - t0
    st = m.status()["xet"]
    print(f"wrong-length chunks: {took:.1f} s, xet {st}")
    assert st["fallbacks"] > 0
    # Every run was refused on arrival for its length (none was handed on to be hashed), and
    # nothing was taken as a chunk: the bridge's bytes were hashed whole instead.
    assert st["xorb_ranges"] == 0 and st["chunks_verified"] == 0, st
    assert st["chain_abandoned"] > 0
    assert took < 120, f"reads through refused runs took {took:.0f} s"


def xorbs_of(emulator, repo, path):
    """The xorbs the CAS names in the reconstruction of `path` (asked directly, as hf_xet does)."""
    with urllib.request.urlopen(urllib.request.Request(
            f"{emulator.url}/api/models/{repo}/xet-read-token/main",
            headers={"Authorization": f"Bearer {WRITE_TOKEN}"}), timeout=30) as r:
        token = json.loads(r.read())
    entry = next(e for e in json.loads(urllib.request.urlopen(
        f"{emulator.url}/api/models/{repo}/tree/main", timeout=30).read()) if e["path"] == path)
    req = urllib.request.Request(f"{token['casUrl'].rstrip('/')}/v2/reconstructions/{entry['xetHash']}",
                                 headers={"Authorization": f"Bearer {token['accessToken']}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return set(json.loads(r.read())["xorbs"])


def cas_calls(emulator):
    s = emulator.stats()
    return s["reconstructions"], s["routes"].get("cas-xorb-suffix", 0), s["cas_bytes_served"]


def test_footers_and_plans_are_asked_for_once(xet_repo, mount, emulator):
    """Six readers of six blocks of one file at once: six plans (one per run; a 4 KiB run asks
    for no window plan), but every xorb's footer fetched once (single-flight). The same six blocks read again after `hubfs cache rm`
    come from the CAS again without a single new reconstruction request (the plans are cached
    below their URLs' expiry) nor a new footer. O_DIRECT and a handle per read: no page cache,
    no read-ahead, so each pread is one 4 KiB FUSE read, one block run, the same in both passes."""
    repo, local, _ = xet_repo
    want = local["big.bin"].read_bytes()
    xorbs = xorbs_of(emulator, repo, "big.bin")
    m = mount(repo)
    os.listdir(m.path)
    offsets = [i * MIB + 4096 * (i + 1) for i in range(6)]

    def pread(off):
        return pread_direct(m / "big.bin", off)

    def read_all():
        with ThreadPoolExecutor(len(offsets)) as ex:
            got = list(ex.map(pread, offsets))
        assert got == [want[off:off + 4096] for off in offsets]

    plans0, footers0, cas0 = cas_calls(emulator)
    read_all()
    plans1, footers1, cas1 = cas_calls(emulator)
    st = m.status()["xet"]
    print(f"first pass: {plans1 - plans0} reconstructions, {footers1 - footers0} footer GETs "
          f"for {len(xorbs)} xorb(s); xet {st}")
    assert st["fallbacks"] == 0 and st["reads"] >= len(offsets)
    assert footers1 - footers0 == len(xorbs), "one footer GET per xorb, however many readers"
    assert st["footers_fetched"] == len(xorbs)
    assert plans1 - plans0 == st["reconstructions"] == st["reads"] == len(offsets)

    r = subprocess.run([HUBFS, "cache", "rm", repo, "--path", "big.bin", "--cache-dir", str(m.cache_dir)],
                       capture_output=True, text=True, env=hubfs_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    read_all()
    plans2, footers2, cas2 = cas_calls(emulator)
    st2 = m.status()["xet"]
    print(f"second pass: {plans2 - plans1} reconstructions, {footers2 - footers1} footer GETs, "
          f"{cas2 - cas1} CAS bytes; xet {st2}")
    assert cas2 - cas1 >= len(offsets) * 4096, "the blocks came from the CAS again"
    assert st2["reads"] == st["reads"] + len(offsets)
    assert plans2 == plans1, "every plan came from the cache"
    assert footers2 == footers1
    assert st2["plans_reused"] == len(offsets) and st2["reconstructions"] == st["reconstructions"]


def test_a_refused_xorb_url_is_replanned_through_the_cache(xet_repo, mount, emulator):
    """The CAS refuses one xorb GET (403, as for an expired signed URL): xet-client asks hubfs
    for a new URL, hubfs drops the stale plan and asks the CAS once more, and the read succeeds
    from the CAS (no bridge fallback)."""
    repo, local, _ = xet_repo
    want = local["big.bin"].read_bytes()
    m = mount(repo)
    os.listdir(m.path)

    def pread(off):
        return pread_direct(m / "big.bin", off)

    # The footer is fetched (and kept) first, so the one refused GET is a data GET.
    assert pread(4096) == want[4096:8192]
    plans0, faults0 = emulator.stats()["reconstructions"], emulator.stats()["faults_injected"]
    off = 3 * MIB + 4096
    with faults(emulator, "route=xorb,status=403,times=1"):
        assert pread(off) == want[off:off + 4096]
        assert emulator.stats()["faults_injected"] - faults0 == 1
    st = m.status()["xet"]
    print(f"refused xorb URL: {emulator.stats()['reconstructions'] - plans0} reconstructions; xet {st}")
    assert st["fallbacks"] == 0 and st["reads"] == 2
    assert emulator.stats()["reconstructions"] - plans0 == 2, "the plan, then one re-plan"
    assert st["reconstructions"] == 3


def test_a_sequential_read_plans_by_window(xet_repo, mount, emulator):
    """A sequential read plans its first runs exactly; a run of 256 KiB or more asks, once, for
    the plan of its 256 MiB window, and the runs after it are cut from that plan. A 4 KiB read
    of bytes never fetched, cut from the window, meets a 403 on its xorb GET: the window is
    re-planned once and the read still comes from the CAS. The whole file read again after
    `hubfs cache rm`: every run cut from the window, no reconstruction request, byte-exact."""
    repo, local, _ = xet_repo
    want = local["big.bin"].read_bytes()
    m = mount(repo)
    os.listdir(m.path)

    def read_direct(limit):
        # O_DIRECT: past the kernel's page cache (which keeps what was read before), one handle
        # so hubfs's read-ahead runs as for any sequential reader.
        fd = os.open(m / "big.bin", os.O_RDONLY | os.O_DIRECT)
        buf, out = mmap.mmap(-1, MIB), bytearray()
        try:
            while len(out) < limit and (n := os.readv(fd, [buf])):
                out += buf[:n]
        finally:
            os.close(fd)
            buf.close()
        return bytes(out)

    plans0 = emulator.stats()["reconstructions"]
    assert read_direct(3 * MIB) == want[:3 * MIB]
    st = m.status()["xet"]
    exact = st["reads"] - st["plans_cut"]
    # The window's plan arrives in the background, maybe after the last run.
    assert wait_until(lambda: m.status()["xet"]["reconstructions"] == exact + 1, 10), \
        f"{exact} runs planned exactly, so {exact + 1} reconstructions: {m.status()['xet']}"
    assert emulator.stats()["reconstructions"] - plans0 == exact + 1
    print(f"first 3 MiB: {st['reads']} runs, {st['plans_cut']} cut from the window")

    off = 5 * MIB + 4096
    plans1, faults0 = emulator.stats()["reconstructions"], emulator.stats()["faults_injected"]
    with faults(emulator, "route=xorb,status=403,times=1"):
        assert pread_direct(m / "big.bin", off) == want[off:off + 4096]
        assert emulator.stats()["faults_injected"] - faults0 == 1
    st2 = m.status()["xet"]
    assert st2["fallbacks"] == 0
    # At least the 4 KiB read's run; context read-ahead may add one when the first pass's
    # read-ahead already reached the bytes before it.
    assert st2["plans_cut"] >= st["plans_cut"] + 1, "the 4 KiB read was cut from the window"
    assert emulator.stats()["reconstructions"] - plans1 == 1, "one re-plan of the window"

    r = subprocess.run([HUBFS, "cache", "rm", repo, "--path", "big.bin", "--cache-dir", str(m.cache_dir)],
                       capture_output=True, text=True, env=hubfs_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    plans2 = emulator.stats()["reconstructions"]
    assert read_direct(SIZE) == want
    st3 = m.status()["xet"]
    print(f"whole file again: xet {st3}")
    assert st3["reads"] > st2["reads"] and st3["fallbacks"] == 0
    assert st3["plans_cut"] - st2["plans_cut"] == st3["reads"] - st2["reads"], "every run cut from the window"
    assert emulator.stats()["reconstructions"] == plans2, "no new reconstruction"


def test_a_file_over_several_windows_reads_from_their_plans(emulator, mount, tmp_path):
    """A 300 MiB Xet file spans three plan windows ([0, 256), [128, 300) and [256, 300) MiB):
    `cat` through the mount is byte-exact, runs past 128 MiB are cut from the window before
    their own (which also holds them) while their own is asked for ahead, and the whole file
    costs the exact plans of the first runs plus one request per window."""
    size = 300 * MIB
    local = tmp_path / "long.bin"
    rng = np.random.default_rng(300)
    with open(local, "wb") as f:
        for _ in range(size // (30 * MIB)):
            f.write(rng.integers(0, 256, 30 * MIB, dtype=np.uint8).tobytes())
    repo = "alice/xet-windows"
    seed_with_xet(emulator, repo, {"long.bin": local})
    m = mount(repo)
    os.listdir(m.path)
    plans0 = emulator.stats()["reconstructions"]
    assert sha(m / "long.bin") == sha(local)
    st = m.status()["xet"]
    exact = st["reads"] - st["plans_cut"]
    print(f"300 MiB: {st['reads']} runs, {st['plans_cut']} cut from windows; xet {st}")
    assert st["fallbacks"] == 0 and st["chain_verified"] == 1
    assert st["plans_cut"] >= 0.8 * st["reads"], "most runs were cut from a window"
    # One request per window, the last maybe still on its way when the read ends.
    assert wait_until(lambda: m.status()["xet"]["reconstructions"] == exact + 3, 10), m.status()["xet"]
    assert emulator.stats()["reconstructions"] - plans0 == exact + 3


def test_no_xet_reads_through_the_bridge(xet_repo, mount, emulator):
    repo, local, _ = xet_repo
    m = mount(repo, args=["--no-xet"])
    before, _ = cas_stats(emulator)
    assert sha(m / "big.bin") == sha(local["big.bin"])
    assert cas_stats(emulator)[0] == before


@pytest.fixture(scope="module")
def short_token_emulator(tmp_path_factory):
    """An emulator whose CAS tokens live 20 s: below xet-client's 30 s refresh margin, so every
    CAS call first asks hubfs's refresher for a new token, and one issued before a 21 s pause
    has expired."""
    from conftest import Emulator
    emu = Emulator(tmp_path_factory.mktemp("emu-short-token"), ["--xet-token-ttl", "20"]).start()
    yield emu
    emu.stop()


def test_expired_cas_token_is_refreshed(short_token_emulator, tmp_path):
    from conftest import Mount, is_mounted, run_mount
    emu = short_token_emulator
    data = np.random.default_rng(5).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    seed_with_xet(emu, "alice/xet-token", {"f.bin": src})
    mp, cache = tmp_path / "mnt", tmp_path / "cache"
    r = run_mount("alice/xet-token", mp, emu, token=WRITE_TOKEN, cache_dir=cache)
    assert r.returncode == 0, r.stderr
    m = Mount(mp, cache / "hubfs.log", cache)
    try:
        assert is_mounted(mp)
        os.listdir(mp)
        fd = os.open(mp / "f.bin", os.O_RDONLY)
        try:
            assert os.pread(fd, 4096, 0) == data[:4096]
            import time
            time.sleep(21)
            off = 2 << 20
            assert os.pread(fd, 4096, off) == data[off:off + 4096]
        finally:
            os.close(fd)
        st = m.status()["xet"]
        assert st["reads"] >= 2 and st["fallbacks"] == 0, st
        # One session (one token asked when it opened), later tokens from the refresher.
        assert st["token_requests"] == 1
        assert m.log.read_text().count("/xet-read-token/") >= 2
    finally:
        m.unmount()
