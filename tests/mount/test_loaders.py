"""Python loaders: mmap and safetensors' safe_open read tensors straight from the mount."""

import mmap
import random
import threading

import numpy as np
from safetensors import safe_open

from conftest import bytes_served


def test_safe_open_tensors_equal_the_originals(seeded, mount):
    m = mount("alice/tiny-model")
    with safe_open(str(m / "model.safetensors"), framework="numpy") as f:
        assert sorted(f.keys()) == sorted(seeded["tensors"])
        for name, want in seeded["tensors"].items():
            np.testing.assert_array_equal(f.get_tensor(name), want)


def test_single_tensor_load_fetches_about_that_tensor(seeded, mount, emulator):
    m = mount("alice/tiny-model")
    before = bytes_served(emulator)
    with safe_open(str(m / "model.safetensors"), framework="numpy") as f:
        t = f.get_tensor("layers.7.weight")
    np.testing.assert_array_equal(t, seeded["tensors"]["layers.7.weight"])
    moved = bytes_served(emulator) - before
    assert moved <= t.nbytes + (4 << 20), moved


def test_mmap_random_pages(seeded, originals, mount):
    m = mount("alice/tiny-model")
    data = (originals / "tiny-model/big.bin").read_bytes()
    with open(m / "big.bin", "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
        assert len(mm) == len(data)
        rng = random.Random(3)
        for _ in range(200):
            off = rng.randrange(0, len(data) - 64)
            assert mm[off:off + 64] == data[off:off + 64]
        assert mm[-10:] == data[-10:]


def test_eight_concurrent_readers_at_random_offsets(seeded, originals, mount):
    m = mount("alice/tiny-model")
    data = (originals / "tiny-model/big.bin").read_bytes()
    errors = []

    def reader(seed):
        rng = random.Random(seed)
        try:
            with open(m / "big.bin", "rb", buffering=0) as f:
                for _ in range(60):
                    off = rng.randrange(0, len(data))
                    n = rng.choice([1, 4096, 65536, 300000, 1 << 20])
                    f.seek(off)
                    got = f.read(n)
                    if got != data[off:off + n]:
                        errors.append((seed, off, n))
        except Exception as e:  # surfaced below
            errors.append((seed, repr(e)))

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
