"""Writing: upload_file, upload_folder, create_commit (add/delete/copy), LFS basic and multipart."""

import hashlib
import io
import os

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    hf_hub_download,
)
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

from conftest import MULTIPART_THRESHOLD, PART_SIZE


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_upload_small_and_lfs_files(api, new_repo, cache_dir, stats, mode):
    repo_id = new_repo()
    small = b"hello world\n"
    big = os.urandom(300_000)
    api.upload_file(path_or_fileobj=small, path_in_repo="dir/small.txt", repo_id=repo_id)
    api.upload_file(path_or_fileobj=big, path_in_repo="model.safetensors", repo_id=repo_id)
    entries = {e.path: e for e in api.list_repo_tree(repo_id, recursive=True)}
    assert entries["dir/small.txt"].lfs is None
    assert entries["dir/small.txt"].size == len(small)
    lfs = entries["model.safetensors"].lfs
    assert lfs.sha256 == hashlib.sha256(big).hexdigest() and lfs.size == len(big)
    assert read(hf_hub_download(repo_id, "dir/small.txt", cache_dir=cache_dir)) == small
    stats.reset()
    assert read(hf_hub_download(repo_id, "model.safetensors", cache_dir=cache_dir)) == big
    s = stats()
    if mode == "xet":
        # hf_xet reads the file's xorbs from the CAS; the resolve bridge / CDN is not used.
        assert s["cdn_requests"] == 0 and s["reconstructions"] == 1
        assert len(big) <= s["cas_bytes_served"] < len(big) + 64 * 1024
    else:
        assert s["bytes_served"] == len(big)
        assert s["cdn_requests"] == 1


def test_lfs_by_size_without_gitattributes_rule(api, new_repo, cache_dir):
    """A file with no LFS extension goes to LFS when big or binary; .gitattributes learns it."""
    repo_id = new_repo()
    data = b"\0\1" * 600_000  # binary, > 1 MB
    api.upload_file(path_or_fileobj=data, path_in_repo="blob.data", repo_id=repo_id)
    (entry,) = api.get_paths_info(repo_id, ["blob.data"])
    assert entry.lfs is not None and entry.lfs.size == len(data)
    attrs = read(hf_hub_download(repo_id, ".gitattributes", cache_dir=cache_dir)).decode()
    assert "blob.data filter=lfs diff=lfs merge=lfs -text" in attrs
    assert read(hf_hub_download(repo_id, "blob.data", cache_dir=cache_dir)) == data


def test_multipart_upload(api, new_repo, cache_dir, stats):
    repo_id = new_repo()
    size = MULTIPART_THRESHOLD + 3 * PART_SIZE + 12345
    data = os.urandom(size)
    stats.reset()
    # A binary IO buffer takes the LFS path even with hf_xet installed (Xet cannot read one).
    api.upload_file(path_or_fileobj=io.BytesIO(data), path_in_repo="big.bin", repo_id=repo_id)
    s = stats()
    parts = -(-size // PART_SIZE)
    assert s["routes"]["cdn-part"] == parts
    assert s["routes"]["lfs-complete"] == 1
    assert s["lfs_bytes_uploaded"] == size
    assert read(hf_hub_download(repo_id, "big.bin", cache_dir=cache_dir)) == data
    # Uploading the same content again transfers nothing.
    stats.reset()
    api.upload_file(path_or_fileobj=io.BytesIO(data), path_in_repo="copy.bin", repo_id=repo_id)
    assert stats()["lfs_bytes_uploaded"] == 0


def test_upload_folder(api, new_repo, tmp_path, cache_dir):
    repo_id = new_repo(repo_type="dataset")
    src = tmp_path / "src"
    (src / "data" / "train").mkdir(parents=True)
    (src / "data" / "train" / "a.csv").write_text("x,y\n1,2\n")
    (src / "data" / "train" / "b.parquet").write_bytes(os.urandom(5000))
    (src / "README.md").write_text("---\nlicense: mit\n---\n# Data\n")
    (src / "notes.log").write_text("ignored")
    (src / ".gitignore").write_text("*.log\n")
    api.upload_folder(folder_path=str(src), repo_id=repo_id, repo_type="dataset")
    files = sorted(api.list_repo_files(repo_id, repo_type="dataset"))
    assert files == [".gitattributes", ".gitignore", "README.md", "data/train/a.csv", "data/train/b.parquet"]
    for rel in ["data/train/a.csv", "data/train/b.parquet", "README.md"]:
        got = read(hf_hub_download(repo_id, rel, repo_type="dataset", cache_dir=cache_dir))
        assert got == (src / rel).read_bytes()


def test_create_commit_add_delete_copy(api, new_repo, cache_dir):
    repo_id = new_repo()
    weights = os.urandom(4096)
    api.create_commit(
        repo_id,
        operations=[
            CommitOperationAdd("a.txt", b"A"),
            CommitOperationAdd("sub/b.txt", b"B"),
            CommitOperationAdd("sub/deep/c.txt", b"C"),
            CommitOperationAdd("w.bin", weights),
        ],
        commit_message="add files",
        commit_description="several at once",
    )
    info = api.create_commit(
        repo_id,
        operations=[
            CommitOperationDelete("a.txt"),
            CommitOperationDelete("sub/deep/", is_folder=True),
            CommitOperationCopy("w.bin", "copies/w2.bin"),
            CommitOperationCopy("sub/b.txt", "copies/b2.txt"),
        ],
        commit_message="shuffle",
    )
    assert len(info.oid) == 40 and info.commit_url.endswith(f"/{repo_id}/commit/{info.oid}")
    files = sorted(api.list_repo_files(repo_id))
    assert files == [".gitattributes", "copies/b2.txt", "copies/w2.bin", "sub/b.txt", "w.bin"]
    a, b = api.get_paths_info(repo_id, ["w.bin", "copies/w2.bin"])
    assert a.lfs.sha256 == b.lfs.sha256 and a.blob_id == b.blob_id
    assert read(hf_hub_download(repo_id, "copies/w2.bin", cache_dir=cache_dir)) == weights
    commits = api.list_repo_commits(repo_id)
    assert [c.title for c in commits] == ["shuffle", "add files", "initial commit"]
    assert commits[1].message == "several at once"


def test_delete_file_and_folder(api, new_repo):
    repo_id = new_repo()
    api.upload_file(path_or_fileobj=b"1", path_in_repo="keep.txt", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"2", path_in_repo="gone.txt", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"3", path_in_repo="folder/x.txt", repo_id=repo_id)
    api.delete_file("gone.txt", repo_id=repo_id)
    api.delete_folder("folder", repo_id=repo_id)
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "keep.txt"]
    with pytest.raises(EntryNotFoundError):
        api.delete_file("gone.txt", repo_id=repo_id)


def test_stale_parent_commit_is_refused(api, new_repo):
    repo_id = new_repo()
    base = api.model_info(repo_id).sha
    api.upload_file(path_or_fileobj=b"1", path_in_repo="one.txt", repo_id=repo_id, parent_commit=base)
    with pytest.raises(HfHubHTTPError) as e:
        api.upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id=repo_id, parent_commit=base)
    assert e.value.response.status_code == 412
    assert "two.txt" not in api.list_repo_files(repo_id)
    # The current head (or a 7+ char prefix of it) is accepted.
    head = api.model_info(repo_id).sha
    api.upload_file(path_or_fileobj=b"2", path_in_repo="two.txt", repo_id=repo_id, parent_commit=head[:7])
    assert "two.txt" in api.list_repo_files(repo_id)


def test_unchanged_files_are_not_recommitted(api, new_repo):
    repo_id = new_repo()
    api.upload_file(path_or_fileobj=b"same", path_in_repo="s.txt", repo_id=repo_id)
    head = api.model_info(repo_id).sha
    info = api.upload_file(path_or_fileobj=b"same", path_in_repo="s.txt", repo_id=repo_id)
    assert info.oid == head  # preupload returned the remote oid; the client skipped the commit


def test_names_with_special_characters(api, new_repo, cache_dir):
    repo_id = new_repo()
    names = ["with space.txt", "hash#1.txt", "per%cent.txt", "unicodé/日本.txt", "q?mark.txt"]
    for i, n in enumerate(names):
        api.upload_file(path_or_fileobj=str(i).encode(), path_in_repo=n, repo_id=repo_id)
    for i, n in enumerate(names):
        assert read(hf_hub_download(repo_id, n, cache_dir=cache_dir)) == str(i).encode()
    assert {e.path for e in api.get_paths_info(repo_id, names)} == set(names)
