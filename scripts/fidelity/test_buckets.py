"""Storage Buckets with the official client as installed (hf_xet on): HfApi's bucket methods and
the `hf buckets` CLI against the emulator (bucket routes + CAS).

Buckets are Xet-only (content goes to the CAS through hf_xet, no LFS, no commits), so these
tests only run in the `xet` hub mode; in the other modes they are deselected, not passed.
"""

import hashlib
import os
import subprocess
import sys

import pytest

from conftest import BOB, WRITE, client_env, new_repo_id

pytestmark = pytest.mark.modes("xet")

HF = os.path.join(os.path.dirname(sys.executable), "hf")


def new_bucket(api, private=False):
    bucket_id = new_repo_id("bucket")
    url = api.create_bucket(bucket_id, private=private)
    assert url.bucket_id == bucket_id
    return bucket_id


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_lifecycle(api, api_bob):
    from huggingface_hub.errors import BucketNotFoundError, HfHubHTTPError

    bucket_id = new_bucket(api)
    # exist_ok swallows the 409; without it the conflict surfaces.
    api.create_bucket(bucket_id, exist_ok=True)
    with pytest.raises(HfHubHTTPError) as e:
        api.create_bucket(bucket_id)
    assert e.value.response.status_code == 409

    info = api.bucket_info(bucket_id)
    assert (info.id, info.private, info.size, info.total_files) == (bucket_id, False, 0, 0)
    assert info.created_at.year >= 2026
    assert bucket_id in [b.id for b in api.list_buckets()]
    assert bucket_id in [b.id for b in api_bob.list_buckets(namespace="alice")]

    api.update_bucket_settings(bucket_id, private=True)
    assert api.bucket_info(bucket_id).private
    with pytest.raises(BucketNotFoundError):
        api_bob.bucket_info(bucket_id)

    moved = new_repo_id("moved").replace("alice/", "acme/")
    api.move_bucket(bucket_id, moved)
    with pytest.raises(BucketNotFoundError):
        api.bucket_info(bucket_id)
    assert api.bucket_info(moved).private

    api.delete_bucket(moved)
    with pytest.raises(BucketNotFoundError):
        api.bucket_info(moved)
    api.delete_bucket(moved, missing_ok=True)


def test_upload_list_download_copy_delete(api, stats, tmp_path):
    from huggingface_hub import BucketFile, BucketFolder

    bucket_id = new_bucket(api)
    big = os.urandom(3 << 20)
    small = b'{"hello": "bucket"}\n'
    src = tmp_path / "weights.bin"
    src.write_bytes(big)
    os.utime(src, (1_700_000_000, 1_700_000_000))
    stats.reset()
    api.batch_bucket_files(
        bucket_id,
        add=[(str(src), "models/weights.bin"), (small, "config.json"), (b"", "empty.txt")],
    )
    s = stats()
    # The content went to the CAS through hf_xet: no LFS, no commit.
    assert s["xorb_uploads"] >= 1 and s["cas_bytes_received"] >= len(big), s
    assert s["routes"].get("lfs-batch", 0) == 0 and s["commits"] == 0, s
    assert s["routes"].get("bucket-xet-token", 0) >= 1 and s["routes"]["bucket-batch"] == 1, s

    info = api.bucket_info(bucket_id)
    assert (info.total_files, info.size) == (3, len(big) + len(small))

    root = list(api.list_bucket_tree(bucket_id))
    assert sorted((type(e).__name__, e.path) for e in root) == [
        ("BucketFile", "config.json"),
        ("BucketFile", "empty.txt"),
        ("BucketFolder", "models"),
    ]
    files = {e.path: e for e in api.list_bucket_tree(bucket_id, recursive=True)}
    assert set(files) == {"config.json", "empty.txt", "models/weights.bin"}
    assert all(isinstance(e, BucketFile) for e in files.values())
    w = files["models/weights.bin"]
    assert w.size == len(big) and len(w.xet_hash) == 64
    assert w.mtime.timestamp() == 1_700_000_000  # the client's mtime, kept
    assert [e.path for e in api.list_bucket_tree(bucket_id, prefix="models")] == ["models/weights.bin"]
    assert not any(isinstance(e, BucketFolder) for e in api.list_bucket_tree(bucket_id, prefix="models/"))

    [meta] = api.get_bucket_paths_info(bucket_id, ["models/weights.bin", "missing"])
    assert (meta.path, meta.xet_hash) == ("models/weights.bin", w.xet_hash)
    fm = api.get_bucket_file_metadata(bucket_id, "models/weights.bin")
    assert fm.size == len(big) and fm.xet_file_data.file_hash == w.xet_hash

    stats.reset()
    out = tmp_path / "out"
    api.download_bucket_files(
        bucket_id,
        [
            ("models/weights.bin", out / "w.bin"),
            ("config.json", out / "c.json"),
            ("empty.txt", out / "e.txt"),
        ],
    )
    assert sha((out / "w.bin").read_bytes()) == sha(big)
    assert (out / "c.json").read_bytes() == small and (out / "e.txt").read_bytes() == b""
    s = stats()
    assert s["reconstructions"] >= 1 and s["cas_bytes_served"] >= len(big) // 2, s

    # Server-side copy into another bucket: no bytes move.
    other = new_bucket(api)
    stats.reset()
    api.copy_files(f"hf://buckets/{bucket_id}/models/", f"hf://buckets/{other}/backup/")
    assert stats()["cas_bytes_received"] == 0
    [copied] = api.get_bucket_paths_info(other, ["backup/weights.bin"])
    assert copied.xet_hash == w.xet_hash and copied.size == len(big)

    api.batch_bucket_files(bucket_id, delete=["config.json", "empty.txt"])
    assert [e.path for e in api.list_bucket_tree(bucket_id, recursive=True)] == ["models/weights.bin"]


def test_batch_refuses_content_never_uploaded(api):
    from huggingface_hub.errors import BucketBatchError

    bucket_id = new_bucket(api)
    with pytest.raises(BucketBatchError) as e:
        api.batch_bucket_files(
            bucket_id, copy=[("bucket", bucket_id, "ab" * 32, "ghost.bin")]
        )
    assert [f["path"] for f in e.value.failures] == ["ghost.bin"]
    assert api.bucket_info(bucket_id).total_files == 0


def test_private_bucket_invisible_to_others(api, api_bob, api_anon, tmp_path):
    from huggingface_hub.errors import BucketNotFoundError, HfHubHTTPError

    bucket_id = new_bucket(api, private=True)
    api.batch_bucket_files(bucket_id, add=[(b"secret bytes", "s.txt")])
    for other in (api_bob, api_anon):
        with pytest.raises(BucketNotFoundError):
            other.bucket_info(bucket_id)
        with pytest.raises(BucketNotFoundError):
            list(other.list_bucket_tree(bucket_id))
        assert bucket_id not in [b.id for b in other.list_buckets(namespace="alice")]
        with pytest.raises(HfHubHTTPError):
            other.download_bucket_files(bucket_id, [("s.txt", tmp_path / "x")])
        assert not (tmp_path / "x").exists()
    with pytest.raises(HfHubHTTPError) as e:
        api_bob.batch_bucket_files(bucket_id, delete=["s.txt"])
    assert e.value.response.status_code == 404
    # The owner still sees everything.
    api.download_bucket_files(bucket_id, [("s.txt", tmp_path / "mine")])
    assert (tmp_path / "mine").read_bytes() == b"secret bytes"


def hf(emulator, tmp_path, *args, token=WRITE, ok=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(client_env("xet"))
    # The CLI authenticates with HF_TOKEN, which counts as an implicit token.
    env.pop("HF_HUB_DISABLE_IMPLICIT_TOKEN", None)
    env.update(
        {
            "HF_ENDPOINT": emulator.url,
            "HF_TOKEN": token,
            "HF_HOME": str(tmp_path / "cli-home"),
            "HF_XET_CACHE": str(tmp_path / "cli-home" / "xet"),
        }
    )
    r = subprocess.run([HF, *args], env=env, capture_output=True, text=True, timeout=100)
    assert (r.returncode == 0) == ok, f"hf {' '.join(args)}:\n{r.stdout}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr if not ok else r.stdout


def test_hf_buckets_cli(api, emulator, tmp_path):
    bucket_id = new_bucket(api)
    uri = f"hf://buckets/{bucket_id}"
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    blobs = {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(1 << 20), "sub/c.txt": b"gamma\n"}
    for p, data in blobs.items():
        (local / p).write_bytes(data)

    # cp up and down.
    hf(emulator, tmp_path, "buckets", "cp", str(local / "a.txt"), f"{uri}/one/a.txt")
    hf(emulator, tmp_path, "buckets", "cp", f"{uri}/one/a.txt", str(tmp_path / "a-back.txt"))
    assert (tmp_path / "a-back.txt").read_bytes() == blobs["a.txt"]

    # sync a folder up, list it, sync it down elsewhere.
    hf(emulator, tmp_path, "buckets", "sync", str(local), f"{uri}/mirror")
    listing = hf(emulator, tmp_path, "buckets", "ls", f"{bucket_id}/mirror", "-R")
    for p in blobs:
        assert f"mirror/{p}" in listing, listing
    assert {e.path for e in api.list_bucket_tree(bucket_id, prefix="mirror", recursive=True)} == {
        f"mirror/{p}" for p in blobs
    }
    down = tmp_path / "down"
    hf(emulator, tmp_path, "buckets", "sync", f"{uri}/mirror", str(down))
    for p, data in blobs.items():
        assert (down / p).read_bytes() == data, p
    # A second sync up has nothing to send.
    before = api.bucket_info(bucket_id)
    hf(emulator, tmp_path, "buckets", "sync", str(local), f"{uri}/mirror")
    assert api.bucket_info(bucket_id).total_files == before.total_files

    # ls of buckets, then rm (one file, then recursively).
    assert bucket_id in hf(emulator, tmp_path, "buckets", "ls")
    hf(emulator, tmp_path, "buckets", "rm", f"{bucket_id}/one/a.txt", "-y")
    hf(emulator, tmp_path, "buckets", "rm", f"{bucket_id}/mirror", "-R", "-y")
    assert list(api.list_bucket_tree(bucket_id, recursive=True)) == []


def test_cli_cannot_write_to_others_bucket(api, emulator, tmp_path):
    bucket_id = new_bucket(api)
    f = tmp_path / "x.txt"
    f.write_bytes(b"x")
    out = hf(emulator, tmp_path, "buckets", "cp", str(f), f"hf://buckets/{bucket_id}/x.txt", token=BOB, ok=False)
    assert "403" in out or "Forbidden" in out or "rights" in out, out
    assert list(api.list_bucket_tree(bucket_id)) == []
