"""A file of several GiB: offsets past 2^31 and 2^32 read exactly.

The content is computable (every 8-byte word holds its own offset), so no copy is kept and any
range can be checked."""

import os

import numpy as np
import pytest

SIZE = (4 << 30) + (512 << 20) + 4321


def expected(off, n):
    start_word = off // 8
    end_word = (off + n + 7) // 8
    words = np.arange(start_word, end_word, dtype="<u8") * 8
    raw = words.tobytes()
    skip = off - start_word * 8
    return raw[skip:skip + n]


@pytest.fixture(scope="module")
def huge_repo(api, workdir):
    path = workdir / "huge.bin"
    with open(path, "wb") as f:
        chunk_words = 8 << 20
        written = 0
        while written < SIZE:
            n = min(chunk_words * 8, SIZE - written)
            f.write(expected(written, n))
            written += n
    api.create_repo("alice/huge")
    api.upload_file(repo_id="alice/huge", path_or_fileobj=str(path), path_in_repo="huge.bin")
    os.remove(path)
    return "alice/huge"


def test_offsets_beyond_4gib(huge_repo, mount, emulator):
    m = mount(huge_repo)
    assert os.path.getsize(m / "huge.bin") == SIZE
    with open(m / "huge.bin", "rb") as f:
        for off in [0, (1 << 31) - 3, 1 << 31, (1 << 32) - 5, 1 << 32, (1 << 32) + 123457, SIZE - 4096, SIZE - 1]:
            f.seek(off)
            n = min(70000, SIZE - off)
            assert f.read(n) == expected(off, n), off
        f.seek(SIZE)
        assert f.read(10) == b""
