"""End-to-end integrity: bytes that do not match their content hash never complete a read."""

import errno
import hashlib
import io
import subprocess

import pytest

from seed import det_bytes


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


@pytest.fixture(scope="module")
def verify_repo(api):
    lfs = det_bytes(3 << 20, 99)
    plain = b"plain text file\n" * 1000
    api.create_repo("alice/verify")
    # A binary buffer takes the LFS path even with hf_xet on, so the Hub keeps an LFS object
    # (and serves the bridge from it) for the test to corrupt.
    api.upload_file(repo_id="alice/verify", path_or_fileobj=io.BytesIO(lfs), path_in_repo="w.bin")
    api.upload_file(repo_id="alice/verify", path_or_fileobj=plain, path_in_repo="plain.txt")
    return lfs, plain


def stored_object(emulator, kind, digest):
    return emulator.data_dir / "objects" / kind / digest[:2] / digest[2:]


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.mark.parametrize("name", ["w.bin", "plain.txt"])
def test_corrupt_hub_bytes_give_eio_at_the_end_then_heal(verify_repo, emulator, mount, name):
    lfs, plain = verify_repo
    data = lfs if name == "w.bin" else plain
    obj = (stored_object(emulator, "lfs", hashlib.sha256(data).hexdigest()) if name == "w.bin"
           else stored_object(emulator, "blobs", git_blob_id(data)))
    assert obj.exists(), obj
    flip_byte(obj, len(data) // 2)
    try:
        m = mount("alice/verify")
        with pytest.raises(OSError) as e:
            with open(m / name, "rb") as f:
                f.read()
        assert e.value.errno == errno.EIO
        # sha256sum and cp fail too: no tool ever gets a complete wrong copy.
        assert subprocess.run(["sha256sum", str(m / name)], capture_output=True).returncode != 0
        assert m.status()["read"]["verify_failures"] >= 1
    finally:
        flip_byte(obj, len(data) // 2)
    # The bad bytes were dropped from the cache: once the Hub serves the right bytes, so do we.
    with open(m / name, "rb") as f:
        assert f.read() == data
    assert m.status()["read"]["verified_blobs"] >= 1
