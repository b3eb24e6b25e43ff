"""FUSE passthrough: a file that is complete and verified in the cache is read by the kernel
straight from the cache's data file, without a request to hubfs."""

import hashlib
import mmap
import os
import random
import threading
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from conftest import bytes_served, sha, wait_until

MIB = 1 << 20
# Passthrough serves read-only views; files of a writable view stay served by hubfs.
RO = ["--read-only"]


def drop_caches():
    """Empties the page cache, the FUSE inodes' included: a read after this reaches the
    filesystem that owns the pages."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3")


def passthrough(m):
    return m.status()["passthrough"]


def reads(m):
    return m.status()["read"]["reads"]


def opens_through(m, name):
    """Opens `name`, reads one byte, closes; True if the open was passed through."""
    before = passthrough(m)["opens"]
    with open(m / name, "rb") as f:
        f.read(1)
    return passthrough(m)["opens"] > before


def wait_passthrough(m, name):
    """A file that was read whole gets verified (in order as it streams, or in the background);
    an inode hubfs served stays served while the kernel holds it (its page cache is warm), so
    the page cache is dropped, which makes the kernel forget the inode: from then on opens pass
    through."""
    assert wait_until(lambda: drop_caches() or opens_through(m, name), 30), \
        f"{name} never passed through: {m.status()}"


def no_pins(m):
    return wait_until(lambda: m.status()["cache"]["pinned_blobs"] == 0, 30)


def test_a_fully_read_file_is_then_read_by_the_kernel_from_the_cache(seeded, originals, mount):
    m = mount("alice/tiny-model", args=RO)
    assert passthrough(m)["available"], "this kernel has FUSE passthrough"
    want = sha(originals / "tiny-model/big.bin")
    assert sha(m / "big.bin") == want
    wait_passthrough(m, "big.bin")
    before = reads(m)
    opens = passthrough(m)["opens"]
    assert sha(m / "big.bin") == want
    drop_caches()
    assert sha(m / "big.bin") == want, "after dropping the page cache: from the cache file"
    st = m.status()
    assert st["read"]["reads"] == before, "hubfs saw no read request"
    assert st["passthrough"]["opens"] >= opens + 2
    # Pinned while open, released with the last handle.
    with open(m / "big.bin", "rb") as f:
        f.read(10)
        st = m.status()["cache"]
        assert st["pinned_blobs"] == 1
        assert st["pinned_bytes"] >= os.path.getsize(originals / "tiny-model/big.bin")
    assert no_pins(m)
    assert passthrough(m)["inodes"] == 0


def test_mmap_and_safetensors_on_a_passthrough_file(seeded, originals, mount):
    m = mount("alice/tiny-model", args=RO)
    path = m / "model.safetensors"
    want = (originals / "tiny-model/model.safetensors").read_bytes()
    assert path.read_bytes() == want
    wait_passthrough(m, "model.safetensors")
    drop_caches()
    before = reads(m)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
        offsets = random.Random(3).sample(range(len(want) - 64), 200)
        for off in offsets:
            assert mm[off:off + 64] == want[off:off + 64]
        assert mm[:] == want
    got = load_file(str(path))
    expected = seeded["tensors"]
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        assert np.array_equal(got[name], tensor), name
    assert reads(m) == before, "mmap faults and safetensors were served by the kernel"


def test_a_file_read_through_hubfs_stays_served_while_its_pages_are_cached(seeded, originals, mount):
    """Once a file hubfs served is complete, its next opens still read the inode's page cache,
    which holds the file, rather than pass through to the cache file, which holds no pages
    (written with O_DIRECT): a warm reload is not a disk read. Once the kernel forgets the
    inode, taking its pages with it, opens pass through."""
    m = mount("alice/tiny-model", args=RO)
    path = m / "model.safetensors"
    want = (originals / "tiny-model/model.safetensors").read_bytes()
    assert path.read_bytes() == want

    def kept_served():
        kept = passthrough(m)["kept_served"]
        assert path.read_bytes() == want
        return passthrough(m)["kept_served"] > kept

    assert wait_until(kept_served, 30), f"never complete, or passed through: {m.status()}"
    before = reads(m)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
        assert mm[:] == want
    got = load_file(str(path))
    for name, tensor in seeded["tensors"].items():
        assert np.array_equal(got[name], tensor), name
    st = m.status()
    assert st["read"]["reads"] == before, "the kernel answered from the inode's page cache"
    assert st["passthrough"]["opens"] == 0
    assert st["passthrough"]["kept_served"] >= 3
    wait_passthrough(m, "model.safetensors")
    assert load_file(str(path)).keys() == seeded["tensors"].keys()
    assert reads(m) == before, "passed through: the kernel read the cache file"


def test_a_file_open_while_partial_stays_served_until_its_last_close(seeded, originals, mount):
    m = mount("alice/tiny-model", args=RO)
    want = (originals / "tiny-model/big.bin").read_bytes()
    with open(m / "big.bin", "rb") as partial:
        head = partial.read(MIB)
        assert head == want[:MIB]
        # Another reader completes the file (and its verification) meanwhile.
        assert sha(m / "big.bin") == hashlib.sha256(want).hexdigest()
        # New opens of an inode open in served mode stay served (the kernel refuses mixing).
        opens = passthrough(m)["opens"]
        with open(m / "big.bin", "rb") as second:
            assert second.read() == want
        assert passthrough(m)["opens"] == opens
        rest = partial.read()
        assert head + rest == want
    # Once every handle is closed and the kernel has let the inode go, the next open passes
    # through.
    wait_passthrough(m, "big.bin")
    assert sha(m / "big.bin") == hashlib.sha256(want).hexdigest()


def _upload_filler(api, repo, files, size):
    api.create_repo(repo, exist_ok=True)
    datas = {}
    for i in range(files):
        data = random.Random(1000 + i).randbytes(size)
        name = f"filler{i}.bin"
        api.upload_file(repo_id=repo, path_or_fileobj=data, path_in_repo=name)
        datas[name] = data
    return datas


def test_eviction_never_breaks_an_open_passthrough_file(seeded, originals, mount, api):
    fillers = _upload_filler(api, "alice/pt-filler", 3, 12 * MIB)
    want = (originals / "tiny-model/big.bin").read_bytes()
    cap = 56 * MIB
    m = mount("hf://", args=[*RO, "--cache-size", "56M"])
    big = m / "alice/tiny-model/big.bin"
    assert sha(big) == hashlib.sha256(want).hexdigest()
    wait_passthrough(m, "alice/tiny-model/big.bin")
    with open(big, "rb") as held:
        assert m.status()["cache"]["pinned_blobs"] == 1
        errors = []

        def reread():
            # The kernel keeps reading the pinned cache file while others are evicted.
            for _ in range(3):
                held.seek(0)
                if held.read() != want:
                    errors.append("wrong bytes")
                drop_caches()

        t = threading.Thread(target=reread)
        t.start()
        for _ in range(2):
            for name, data in fillers.items():
                assert (m / "alice/pt-filler" / name).read_bytes() == data
        t.join(120)
        assert not t.is_alive() and not errors
        held.seek(0)
        assert held.read() == want
        st = m.status()["cache"]
        assert st["evictions"] > 0, st
        assert st["used_bytes"] <= cap
        assert st["pinned_bytes"] >= len(want)
    assert no_pins(m)


def test_remount_reads_from_the_cache_file_with_zero_hub_bytes(seeded, originals, mount, emulator, tmp_path):
    cache = tmp_path / "pt-cache"
    want = sha(originals / "tiny-model/big.bin")
    m = mount("alice/tiny-model", cache_dir=cache, args=RO, name="first")
    assert sha(m / "big.bin") == want
    wait_passthrough(m, "big.bin")
    m.unmount()
    m2 = mount("alice/tiny-model", cache_dir=cache, args=RO, name="second")
    before = bytes_served(emulator)
    assert sha(m2 / "big.bin") == want
    st = m2.status()
    assert bytes_served(emulator) - before == 0
    assert st["passthrough"]["opens"] >= 1, "the verification mark survives the remount"
    assert st["read"]["reads"] == 0


def _data_file(cache: Path):
    """The data file of big.bin, the only large one in its cache."""
    files = [p for p in (cache / "blocks").rglob("*.data") if p.stat().st_size > 40 * MIB]
    assert len(files) == 1, files
    return files[0]


def test_a_corrupted_cache_file_is_detected_while_not_pinned(seeded, originals, mount):
    """Bit rot written into a closed file's cache data file changes its ctime: the verification
    mark no longer holds, the next open is served by hubfs, whose crc check drops the bad block
    and refetches. (What is not detected: damage to a file while the kernel reads it through
    passthrough, and damage that leaves the ctime as it was; see SEMANTICS.md.)"""
    m = mount("alice/tiny-model", args=RO)
    want = sha(originals / "tiny-model/big.bin")
    assert sha(m / "big.bin") == want
    wait_passthrough(m, "big.bin")
    assert no_pins(m)
    data_file = _data_file(m.cache_dir)
    with open(data_file, "r+b") as f:
        f.seek(20 * MIB + 7)
        b = f.read(1)
        f.seek(20 * MIB + 7)
        f.write(bytes([b[0] ^ 0x55]))
    drop_caches()
    opens = passthrough(m)["opens"]
    assert sha(m / "big.bin") == want
    st = m.status()
    assert st["passthrough"]["opens"] == opens, "not passed through"
    assert st["cache"]["corrupt_dropped"] >= 1
    # Refetched and verified again: passthrough resumes with the right bytes.
    wait_passthrough(m, "big.bin")
    drop_caches()
    assert sha(m / "big.bin") == want


def test_a_new_version_opens_while_the_old_one_is_passed_through(seeded, api, mount):
    """A new version of a file is a new inode, so it gets its own open mode and backing file
    while handles of the old version keep reading the old one through passthrough."""
    api.create_repo("alice/pt-moving", exist_ok=True)
    api.upload_file(repo_id="alice/pt-moving", path_or_fileobj=b"version 1\n", path_in_repo="f.txt")
    m = mount("alice/pt-moving", args=[*RO, "--refresh", "1"])
    assert (m / "f.txt").read_bytes() == b"version 1\n"
    wait_passthrough(m, "f.txt")
    with open(m / "f.txt", "rb") as old:
        assert old.read() == b"version 1\n"
        api.upload_file(repo_id="alice/pt-moving", path_or_fileobj=b"version 2, longer\n", path_in_repo="f.txt")
        assert wait_until(lambda: (m / "f.txt").read_bytes() == b"version 2, longer\n", 60)
        assert os.stat(m / "f.txt").st_ino != os.fstat(old.fileno()).st_ino
        old.seek(0)
        assert old.read() == b"version 1\n", "the open handle keeps its version"
        wait_passthrough(m, "f.txt")
        assert passthrough(m)["inodes"] == 1, "the old version's inode stays in passthrough"
    assert (m / "f.txt").read_bytes() == b"version 2, longer\n"
