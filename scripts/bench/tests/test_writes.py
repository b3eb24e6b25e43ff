"""The write workload's parts that decide whether an upload counts: the data it generates and
the checks that an upload landed intact, run against a stand-in for the official client (the
real client and emulator run in the benchmark itself).

    cd scripts && python -m pytest -q bench/tests"""

import hashlib
import subprocess
from types import SimpleNamespace

import pytest
from huggingface_hub.hf_api import RepoFile

from bench.util import BenchError
from bench.w_writes import SMALL_SIZES, SMALL_TREE, _big_file, _git_blob_id, _small_files


class FakeHub:
    """Answers list_repo_tree / get_paths_info from a dict: path -> (bytes, LFS or not)."""

    def __init__(self, files: dict):
        self.files = files

    def _entry(self, path: str) -> RepoFile:
        data, lfs = self.files[path]
        meta = {"size": len(data), "oid": hashlib.sha256(data).hexdigest(), "pointerSize": 130} if lfs else None
        return RepoFile(path=path, size=len(data), oid=_git_blob_id(data), lfs=meta)

    def list_repo_tree(self, repo, path_in_repo, recursive):
        assert recursive
        return [self._entry(p) for p in self.files if p.startswith(path_in_repo + "/")]

    def get_paths_info(self, repo, paths):
        return [self._entry(p) for p in paths if p in self.files]


def test_blob_id_is_gits(tmp_path):
    data = b"hello hubfs\n"
    (tmp_path / "f").write_bytes(data)
    git = subprocess.run(["git", "hash-object", str(tmp_path / "f")], capture_output=True, text=True, check=True)
    assert _git_blob_id(data) == git.stdout.strip()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return _small_files(tmp_path_factory.mktemp("w") / "small-files")


def local_tree(upload) -> dict:
    return {f"{upload.path_in_repo}/{p.relative_to(upload.local)}": (p.read_bytes(), False)
            for p in upload.local.rglob("*") if p.is_file()}


def test_small_files_are_a_thousand_text_files_in_nested_folders(small):
    folders, subfolders, per_folder = SMALL_TREE
    files = [p for p in small.local.rglob("*") if p.is_file()]
    assert len(files) == folders * subfolders * per_folder == 1000
    assert len({p.parent for p in files}) == folders * subfolders
    assert all(SMALL_SIZES[0] <= p.stat().st_size < SMALL_SIZES[1] for p in files)
    assert sum(p.stat().st_size for p in files) == small.size
    files[0].read_bytes().decode("ascii")  # text, so the Hub keeps them as regular files


def test_small_files_check_passes_only_on_the_exact_tree(small):
    tree = local_tree(small)
    small.check(FakeHub(tree), "r")

    missing = dict(tree)
    missing.pop(next(iter(missing)))
    with pytest.raises(BenchError, match="999 files landed"):
        small.check(FakeHub(missing), "r")

    changed = dict(tree)
    first = next(iter(changed))
    changed[first] = (b"other bytes", False)
    with pytest.raises(BenchError, match="1 of 1000 missing or different"):
        small.check(FakeHub(changed), "r")


def test_big_file_check_wants_the_same_lfs_sha256_and_size(tmp_path):
    local = tmp_path / "file0.bin"
    local.write_bytes(b"\x00\x01" * 5000)
    upload = _big_file(SimpleNamespace(facts=SimpleNamespace(lfs_paths=[str(local)])))
    name = upload.path_in_repo
    upload.check(FakeHub({name: (local.read_bytes(), True)}), "r")
    with pytest.raises(BenchError, match="sha256"):
        upload.check(FakeHub({name: (local.read_bytes()[:-1] + b"\x02", True)}), "r")
    with pytest.raises(BenchError, match="not an LFS file"):
        upload.check(FakeHub({name: (local.read_bytes(), False)}), "r")
    with pytest.raises(BenchError, match="not an LFS file"):
        upload.check(FakeHub({}), "r")
