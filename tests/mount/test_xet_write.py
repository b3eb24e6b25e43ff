"""Writes through Xet: a large file written on a writable mount is uploaded to the CAS (chunked,
deduplicated against what the CAS already has) and committed as an `lfsFile` line; the official
client (hf_xet) downloads it byte-exact and the Hub lists it with a xetHash. A 1 MiB edit in the
middle of a large file sends about 1 MiB of xorb data (emulator stats). A Hub without Xet
(emulator --no-xet) and `hubfs --no-xet` still upload through LFS. kill -9 of the daemon in the
middle of a Xet upload loses nothing."""

import contextlib

import pytest

from conftest import LEGACY_HUB, WRITE_TOKEN, Emulator, Mount, run_mount, wait_until
from crash_lib import kill_daemon
from seed import det_bytes
from test_xet_read import seed_with_xet
from writes_lib import fresh_repo, fsync_write, hub_bytes, synced, write

MIB = 1 << 20

# A pre-Xet Hub (--no-xet) has no CAS to write to: under HUBFS_TEST_LEGACY_HUB=1 these tests are
# deselected (conftest), not skipped, so a legacy run reports only what it really ran.
needs_xet = pytest.mark.needs_xet


def uploads(m):
    return m.status()["writes"]["commit"]["uploads"]


def delta(before, after, key):
    return after[key] - before[key]


@contextlib.contextmanager
def own_hub_mount(tmp_path, emulator_args, repo):
    """An emulator of this test's own (with `emulator_args`), a new repo on it, and a writable
    mount of that repo: yields (emulator, HfApi on it, mount); unmounts and stops on the way out."""
    from huggingface_hub import HfApi
    data_dir = tmp_path / "emu"
    data_dir.mkdir()
    emu = Emulator(data_dir, emulator_args).start()
    m = None
    try:
        hub = HfApi(endpoint=emu.url, token=WRITE_TOKEN)
        hub.create_repo(repo)
        cache = tmp_path / "cache"
        r = run_mount(repo, tmp_path / "mnt", emu, token=WRITE_TOKEN, cache_dir=cache)
        assert r.returncode == 0, r.stderr
        m = Mount(tmp_path / "mnt", cache / "hubfs.log", cache)
        yield emu, hub, m
    finally:
        if m is not None:
            m.unmount()
        emu.stop()


@needs_xet
def test_written_file_lands_as_xet_file(api, mount, emulator):
    repo = fresh_repo(api)
    m = mount(repo)
    data = det_bytes(12 * MIB, 31)
    before = emulator.stats()
    fsync_write(m / "model.bin", data)
    synced(m)
    after = emulator.stats()
    up = uploads(m)
    print(f"12 MiB through Xet: status {up}; emulator CAS received "
          f"{delta(before, after, 'cas_bytes_received')}, LFS {delta(before, after, 'lfs_bytes_uploaded')}")
    assert up["xet_files"] == 1 and up["lfs_files"] == 0
    assert delta(before, after, "lfs_bytes_uploaded") == 0, "nothing went through LFS"
    # Random bytes do not compress: the whole file went to the CAS as xorbs.
    assert delta(before, after, "cas_bytes_received") >= len(data)
    info = api.get_paths_info(repo, ["model.bin"])[0]
    assert info.lfs is not None and info.size == len(data)
    assert info.xet_hash, "the Hub entry has a xetHash"
    served = emulator.stats()["cas_bytes_served"]
    assert hub_bytes(api, repo, "model.bin") == data
    assert emulator.stats()["cas_bytes_served"] - served >= len(data) * 0.9, \
        "the official client downloaded it through the CAS (hf_xet)"


@needs_xet
def test_1mib_edit_of_a_large_file_sends_about_1mib(api, mount, emulator, tmp_path):
    size = 64 * MIB
    original = bytearray(det_bytes(size, 32))
    local = tmp_path / "big.bin"
    local.write_bytes(original)
    repo = fresh_repo(api)
    # Uploaded by another client (the official one, hf_xet): the mount has none of its chunks
    # in its own shard cache and must find them through the CAS's global dedup query.
    seed_with_xet(emulator, repo, {"big.bin": local})
    local.unlink()
    m = mount(repo)
    patch = det_bytes(MIB, 33)
    at = size // 2 + 12345
    before = emulator.stats()
    with open(m / "big.bin", "r+b") as f:
        f.seek(at)
        f.write(patch)
    synced(m, timeout=300)
    after = emulator.stats()
    sent = delta(before, after, "cas_bytes_received")
    up = uploads(m)
    print(f"1 MiB edit of a 64 MiB file: CAS received {sent} bytes (xorbs and shard), "
          f"{delta(before, after, 'dedup_queries')} dedup queries; status {up}")
    assert up["xet_files"] == 1
    assert up["xet_deduped_bytes"] >= size - 3 * MIB
    # About 1 MiB: the patch plus the chunks it straddles at each edge (chunks average 64 KiB).
    assert 0 < sent < 3 * MIB, sent
    assert delta(before, after, "lfs_bytes_uploaded") == 0
    original[at:at + MIB] = patch
    assert hub_bytes(api, repo, "big.bin") == bytes(original)


def test_hub_without_xet_uploads_through_lfs(tmp_path):
    """A pre-Xet Hub answers 404 on the write-token route: today's LFS path, unchanged."""
    repo = "alice/legacy-write"
    # Under HUBFS_TEST_LEGACY_HUB=1 every emulator gets --no-xet already.
    with own_hub_mount(tmp_path, [] if LEGACY_HUB else ["--no-xet"], repo) as (emu, hub, m):
        data = det_bytes(12 * MIB, 34)
        fsync_write(m / "w.bin", data)
        synced(m)
        stats = emu.stats()
        up = uploads(m)
        print(f"--no-xet Hub: status {up}, emulator LFS bytes {stats['lfs_bytes_uploaded']}")
        assert up["xet_unavailable"] >= 1 and up["xet_files"] == 0 and up["lfs_files"] == 1
        assert stats["lfs_bytes_uploaded"] >= len(data)
        assert stats["cas_bytes_received"] == 0
        info = hub.get_paths_info(repo, ["w.bin"])[0]
        assert info.lfs is not None and info.size == len(data)
        assert hub_bytes(hub, repo, "w.bin") == data


@needs_xet
def test_no_xet_flag_uploads_through_lfs(api, mount, emulator):
    repo = fresh_repo(api)
    m = mount(repo, args=["--no-xet"])
    data = det_bytes(12 * MIB, 35)
    before = emulator.stats()
    fsync_write(m / "w.bin", data)
    synced(m)
    after = emulator.stats()
    up = uploads(m)
    assert up["xet_files"] == 0 and up["lfs_files"] == 1 and up["xet_unavailable"] == 0
    assert delta(before, after, "lfs_bytes_uploaded") >= len(data)
    assert delta(before, after, "cas_bytes_received") == 0
    assert hub_bytes(api, repo, "w.bin") == data


@needs_xet
def test_cas_faults_during_a_xet_upload_are_retried(api, mount, emulator):
    repo = fresh_repo(api)
    m = mount(repo)
    data = det_bytes(11 * MIB, 37)
    before = emulator.stats()
    emulator.set_faults("route=cas,path=xorb-grants,times=1,status=503",
                        "route=cas,path=/shards,times=2,status=500")
    try:
        write(m / "w.bin", data)
        synced(m, timeout=180)
    finally:
        emulator.clear_faults()
    assert delta(before, emulator.stats(), "faults_injected") == 3
    assert hub_bytes(api, repo, "w.bin") == data
    assert uploads(m)["xet_files"] >= 1


@needs_xet
@pytest.mark.timeout(600)
def test_kill_9_during_a_xet_upload_loses_nothing(api, mount, emulator, tmp_path):
    """The daemon dies after the xorbs reached the CAS and before the shard (and so the commit)
    did: the remount's upload lands the file, and sends no xorb bytes again (the CAS answers
    "already stored" to each xorb grant)."""
    repo = fresh_repo(api)
    cache = tmp_path / "cache-crash"
    m = mount(repo, cache_dir=cache, name="crash")
    data = det_bytes(24 * MIB, 36)
    before = emulator.stats()
    # The shard upload (the last CAS step before the commit) waits 20 s: the kill lands there.
    emulator.set_faults("route=cas,path=/shards,times=1,stall=20")
    try:
        write(m / "w.bin", data)  # closed, journaled: the commit starts after the quiet period
        assert wait_until(lambda: emulator.stats()["faults_injected"] > before["faults_injected"], 120), \
            "the shard upload never began"
        kill_daemon(m.path)
    finally:
        emulator.clear_faults()
    mid = emulator.stats()
    assert mid["commits"] == before["commits"], "killed before the commit"
    assert delta(before, mid, "cas_bytes_received") >= len(data), "the xorbs were uploaded"
    m2 = mount(repo, cache_dir=cache, name="crash2")
    synced(m2, timeout=300)
    after = emulator.stats()
    redo = delta(mid, after, "cas_bytes_received")
    print(f"kill -9 before the shard: first attempt sent {delta(before, mid, 'cas_bytes_received')} "
          f"bytes, the remount's redo {redo}")
    assert redo < MIB, f"the redo sent {redo} bytes: xorbs again?"
    info = api.get_paths_info(repo, ["w.bin"])[0]
    assert info.xet_hash and info.size == len(data)
    assert hub_bytes(api, repo, "w.bin") == data
    assert uploads(m2)["xet_files"] == 1


@needs_xet
def test_short_lived_write_token_is_refreshed(tmp_path):
    """CAS write tokens that live 20 s, below xet-client's 30 s refresh margin: every CAS call
    of the upload first asks hubfs's refresher (the write-token route again) for a new one."""
    repo = "alice/short-token-write"
    with own_hub_mount(tmp_path, ["--xet-token-ttl", "20"], repo) as (emu, hub, m):
        data = det_bytes(12 * MIB, 38)
        fsync_write(m / "w.bin", data)
        synced(m)
        assert uploads(m)["xet_files"] == 1
        log = m.log.read_text()
        assert log.count("/xet-write-token/") >= 2, "the refresher asked the route again"
        assert "CAS write token refreshed" in log
        assert WRITE_TOKEN not in log
        assert hub_bytes(hub, repo, "w.bin") == data
