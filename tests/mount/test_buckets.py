"""Storage Buckets through hubfs: `hubfs mount hf://buckets/NS/NAME` and `buckets/NS/NAME`
inside a whole-Hub mount. Buckets are created and filled with the official client
(`HfApi.create_bucket`, `batch_bucket_files`, which uploads through hf_xet), read through the
mount byte-exact via the CAS, and (with a write token) written through the mount and checked
with the client again (`list_bucket_tree`, `download_bucket_files`)."""

import errno
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import HUBFS, LEGACY_HUB, READ_TOKEN, WRITE_TOKEN, faults, sha

pytestmark = pytest.mark.skipif(LEGACY_HUB, reason="a legacy (--no-xet) Hub has no buckets' CAS")

CLIENT = r"""
import json, sys
from huggingface_hub import HfApi
endpoint, token, op, bucket = sys.argv[1:5]
api = HfApi(endpoint=endpoint, token=token)
rest = sys.argv[5:]
if op == "seed":
    api.create_bucket(bucket, exist_ok=True)
    api.batch_bucket_files(bucket, add=list(zip(rest[0::2], rest[1::2])))
elif op == "tree":
    out = {}
    for e in api.list_bucket_tree(bucket, recursive=True):
        if getattr(e, "type", "file") == "file" and hasattr(e, "xet_hash"):
            out[e.path] = {"size": e.size, "xet_hash": e.xet_hash}
    print(json.dumps(out))
elif op == "download":
    api.download_bucket_files(bucket, list(zip(rest[0::2], rest[1::2])))
elif op == "delete":
    api.batch_bucket_files(bucket, delete=rest)
elif op == "create":
    api.create_bucket(bucket, exist_ok=True)
"""


def client(emulator, op, bucket, *args, token=WRITE_TOKEN):
    """Runs the official client (hf_xet as installed) in a child process with its own HF_HOME,
    so no hf_xet cache is shared between tests (or with this process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    home = tempfile.mkdtemp(prefix="hubfs-bucket-home-")
    env.update(HF_HOME=home, HF_XET_CACHE=str(Path(home) / "xet"), NO_PROXY="127.0.0.1,localhost",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    r = subprocess.run([sys.executable, "-c", CLIENT, emulator.url, token, op, bucket, *map(str, args)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def tree(emulator, bucket):
    import json
    return json.loads(client(emulator, "tree", bucket))


MANY = 60  # more than the emulator's page size (50): listings cross a page boundary


@pytest.fixture(scope="module")
def bucket_seeded(emulator, tmp_path_factory):
    d = tmp_path_factory.mktemp("bucket-originals")
    files = {
        "readme.txt": b"hello bucket\n",
        "data/blob.bin": os.urandom(3 << 20) + b"tail",
        "data/deep/note.md": b"# deep\n" * 100,
        # Bucket prefixes are lexical: `data` must not list these.
        "database.txt": b"not in data/\n",
        "data2/x.txt": b"not in data/ either\n",
    }
    files.update({f"many/f{i:03d}.txt": f"file {i}\n".encode() for i in range(MANY)})
    args = []
    for path, content in files.items():
        local = d / path.replace("/", "__")
        local.write_bytes(content)
        args += [local, path]
    bucket = "alice/bkt-read"
    client(emulator, "seed", bucket, *args)
    return bucket, files


def test_bucket_mount_lists_and_reads_byte_exact_through_the_cas(bucket_seeded, mount, emulator):
    bucket, files = bucket_seeded
    m = mount(f"hf://buckets/{bucket}", token=READ_TOKEN)
    assert sorted(os.listdir(m.path)) == ["data", "data2", "database.txt", "many", "readme.txt"]
    assert sorted(os.listdir(m / "data")) == ["blob.bin", "deep"]
    assert os.listdir(m / "data2") == ["x.txt"]
    assert sorted(os.listdir(m / "many")) == sorted(f"f{i:03d}.txt" for i in range(MANY))
    assert (m / "data" / "blob.bin").stat().st_size == len(files["data/blob.bin"])
    before = emulator.stats()["cas_bytes_served"]
    for path, content in files.items():
        assert sha(m / path) == hashlib.sha256(content).hexdigest(), path
    assert emulator.stats()["cas_bytes_served"] - before >= len(files["data/blob.bin"])
    xet = m.status()["xet"]
    assert xet["reads"] > 0 and xet["chunks_verified"] > 0, xet
    assert xet["fallbacks"] == 0 and xet["verify_failures"] == 0, xet
    # Whole files checked against their xetHash (bucket files have no sha256).
    read = m.status()["read"]
    assert read["verified_blobs"] >= 1 and read["verify_failures"] == 0, read
    # A ranged read in the middle.
    with open(m / "data" / "blob.bin", "rb") as f:
        f.seek(2 << 20)
        assert f.read(4096) == files["data/blob.bin"][2 << 20:(2 << 20) + 4096]
    with pytest.raises(FileNotFoundError):
        (m / "absent.txt").stat()


def test_corrupted_xorbs_fall_back_to_the_bucket_bridge(bucket_seeded, mount, emulator):
    """The CAS flips a byte in every xorb range: no chunk passes its hash, so hubfs reads the
    bucket file through `/buckets/{id}/resolve` (counted) and the reader gets the right bytes."""
    bucket, files = bucket_seeded
    m = mount(f"hf://buckets/{bucket}", token=READ_TOKEN)
    os.listdir(m / "data")
    with faults(emulator, "route=xorb,corrupt=1"):
        assert sha(m / "data" / "blob.bin") == hashlib.sha256(files["data/blob.bin"]).hexdigest()
    xet = m.status()["xet"]
    assert xet["verify_failures"] > 0 and xet["fallbacks"] > 0, xet


def test_whole_hub_mount_shows_buckets(bucket_seeded, mount):
    bucket, files = bucket_seeded
    ns, name = bucket.split("/")
    m = mount("hf://", token=READ_TOKEN)
    assert "buckets" in os.listdir(m.path)
    assert name in os.listdir(m / "buckets" / ns)
    root = m / "buckets" / ns / name
    assert sorted(os.listdir(root)) == ["data", "data2", "database.txt", "many", "readme.txt"]
    assert (root / "readme.txt").read_bytes() == files["readme.txt"]
    assert sha(root / "data" / "blob.bin") == hashlib.sha256(files["data/blob.bin"]).hexdigest()
    # Buckets have no revisions, and a missing bucket is missing.
    assert not (m / "buckets" / ns / f"{name}@main").exists()
    assert not (m / "buckets" / ns / "no-such-bucket").exists()


def test_read_token_mount_refuses_writes(bucket_seeded, mount):
    """A read token mounts the bucket read-only: writes fail with EROFS (SEMANTICS.md)."""
    bucket, _ = bucket_seeded
    m = mount(f"hf://buckets/{bucket}", token=READ_TOKEN)
    with pytest.raises(OSError) as e:
        (m / "new.txt").write_bytes(b"x")
    assert e.value.errno == errno.EROFS, e.value
    with pytest.raises(OSError) as e:
        os.unlink(m / "readme.txt")
    assert e.value.errno == errno.EROFS, e.value
    with pytest.raises(OSError) as e:
        os.mkdir(m / "newdir")
    assert e.value.errno == errno.EROFS, e.value


def seed_files(emulator, bucket, tmp_path, files):
    args = []
    for path, content in files.items():
        local = tmp_path / ("seed__" + path.replace("/", "__"))
        local.write_bytes(content)
        args += [local, path]
    client(emulator, "seed", bucket, *args)


def hubfs_sync(m):
    r = subprocess.run([HUBFS, "sync", str(m.path)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr


def downloaded(emulator, bucket, tmp_path, paths):
    """The bucket's bytes at `paths`, fetched with the official client (hf_xet)."""
    d = tmp_path / f"dl-{len(list(tmp_path.iterdir()))}"
    d.mkdir()
    args = []
    for p in paths:
        args += [p, d / p.replace("/", "__")]
    client(emulator, "download", bucket, *args)
    return {p: (d / p.replace("/", "__")).read_bytes() for p in paths}


def test_writes_land_through_the_batch_api(emulator, mount, tmp_path):
    bucket = "alice/bkt-write"
    old = os.urandom(1 << 20)
    seed_files(emulator, bucket, tmp_path, {"keep.txt": b"keep\n", "old.bin": old, "gone.txt": b"bye\n"})
    before = tree(emulator, bucket)
    m = mount(f"hf://buckets/{bucket}", token=WRITE_TOKEN)
    assert sorted(os.listdir(m.path)) == ["gone.txt", "keep.txt", "old.bin"]
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    subprocess.run(["cp", str(big), str(m / "big.bin")], check=True, timeout=60)
    os.mkdir(m / "dir")
    subprocess.run(["sh", "-c", f"echo redirected > '{m / 'dir' / 'new.txt'}'"], check=True, timeout=60)
    os.mkdir(m / "moved")
    os.rename(m / "old.bin", m / "moved" / "old.bin")
    os.unlink(m / "gone.txt")
    os.mkdir(m / "empty")
    os.mkdir(m / "tmpdir")
    os.rmdir(m / "tmpdir")
    hubfs_sync(m)

    after = tree(emulator, bucket)
    assert set(after) == {"keep.txt", "big.bin", "dir/new.txt", "moved/old.bin"}, after
    # The rename copied by Xet hash: same content identity, no new upload of it.
    assert after["moved/old.bin"]["xet_hash"] == before["old.bin"]["xet_hash"]
    assert after["keep.txt"] == before["keep.txt"]
    got = downloaded(emulator, bucket, tmp_path, ["big.bin", "dir/new.txt", "moved/old.bin"])
    assert got["big.bin"] == big.read_bytes()
    assert got["dir/new.txt"] == b"redirected\n"
    assert got["moved/old.bin"] == old
    # The mount shows the same, and the local-only directory stays until rmdir.
    assert sorted(os.listdir(m.path)) == ["big.bin", "dir", "empty", "keep.txt", "moved"]
    assert sha(m / "big.bin") == hashlib.sha256(big.read_bytes()).hexdigest()
    os.rmdir(m / "empty")
    assert "empty" not in os.listdir(m.path)
    assert m.status()["writes"]["commit"]["bucket_overwrites"] == 0


def test_concurrent_writer_last_writer_wins_and_is_counted(emulator, mount, tmp_path):
    bucket = "alice/bkt-conflict"
    seed_files(emulator, bucket, tmp_path, {"shared.txt": b"original\n", "other.txt": b"other\n"})
    m = mount(f"hf://buckets/{bucket}", token=WRITE_TOKEN)
    assert (m / "shared.txt").read_bytes() == b"original\n"
    # Another client replaces the file after this mount listed it.
    seed_files(emulator, bucket, tmp_path, {"shared.txt": b"theirs\n"})
    (m / "shared.txt").write_bytes(b"ours\n")
    (m / "other.txt").write_bytes(b"ours too\n")
    hubfs_sync(m)
    got = downloaded(emulator, bucket, tmp_path, ["shared.txt", "other.txt"])
    assert got == {"shared.txt": b"ours\n", "other.txt": b"ours too\n"}
    # Only the path the other client changed is reported.
    assert m.status()["writes"]["commit"]["bucket_overwrites"] == 1
    log = (m.cache_dir / "hubfs.log").read_text()
    assert "changed by another client" in log and "shared.txt" in log
