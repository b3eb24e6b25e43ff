"""HfFileSystem: ls, info, glob, open/seek/read on regular and LFS files."""

import os

import pytest
from huggingface_hub import CommitOperationAdd, HfFileSystem

from conftest import WRITE


@pytest.fixture(scope="module")
def fs_repo(api):
    repo_id = "alice/fs-repo"
    api.create_repo(repo_id)
    data = {"config.json": b'{"a": 1}\n', "weights.bin": os.urandom(1_500_000), "sub/notes.txt": b"n" * 1000}
    api.create_commit(repo_id, operations=[CommitOperationAdd(k, v) for k, v in data.items()], commit_message="fs")
    return repo_id, data


def test_ls_and_info(fs_repo):
    repo_id, data = fs_repo
    fs = HfFileSystem(token=WRITE)
    names = {e["name"]: e for e in fs.ls(repo_id)}
    assert set(names) == {f"{repo_id}/{n}" for n in [".gitattributes", "config.json", "weights.bin", "sub"]}
    assert names[f"{repo_id}/sub"]["type"] == "directory"
    assert names[f"{repo_id}/weights.bin"]["size"] == len(data["weights.bin"])
    assert fs.info(f"{repo_id}/sub/notes.txt")["size"] == 1000
    assert sorted(fs.glob(f"{repo_id}/**/*.txt")) == [f"{repo_id}/sub/notes.txt"]
    assert fs.exists(f"{repo_id}/config.json") and not fs.exists(f"{repo_id}/nope")


def test_open_seek_read(fs_repo, stats):
    repo_id, data = fs_repo
    fs = HfFileSystem(token=WRITE, block_size=64 * 1024)
    w = data["weights.bin"]
    stats.reset()
    with fs.open(f"{repo_id}/weights.bin", "rb") as f:
        f.seek(1_000_000)
        assert f.read(10) == w[1_000_000:1_000_010]
        f.seek(5)
        assert f.read(100) == w[5:105]
        f.seek(-20, os.SEEK_END)
        assert f.read() == w[-20:]
    # Only the touched blocks moved (through the resolve URL, or hf_xet's xorb ranges).
    s = stats()
    moved = s["bytes_served"] + s["cas_bytes_served"]
    assert 0 < moved < 4 * 64 * 1024, s
    with fs.open(f"{repo_id}/config.json", "rb") as f:
        assert f.read() == data["config.json"]
    assert fs.cat_file(f"{repo_id}/sub/notes.txt", start=10, end=20) == b"n" * 10


def test_read_at_revision(api, fs_repo):
    repo_id, data = fs_repo
    api.create_tag(repo_id, tag="fs-v1", exist_ok=True)
    fs = HfFileSystem(token=WRITE)
    with fs.open(f"{repo_id}@fs-v1/config.json", "rb") as f:
        assert f.read() == data["config.json"]
