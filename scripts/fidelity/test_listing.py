"""list_repo_tree across pages (plain, recursive, expanded) and get_paths_info."""

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.hf_api import RepoFile, RepoFolder

from conftest import PAGE_SIZE


@pytest.fixture(scope="module")
def tree_repo(api):
    repo_id = "alice/tree-listing"
    api.create_repo(repo_id)
    ops = [CommitOperationAdd(f"many/file{i:02d}.txt", f"{i}".encode()) for i in range(3 * PAGE_SIZE + 1)]
    ops += [CommitOperationAdd(f"nested/d{i}/leaf.txt", b"leaf") for i in range(PAGE_SIZE)]
    ops += [CommitOperationAdd("top.bin", b"\0" * 64)]
    api.create_commit(repo_id, operations=ops, commit_message="many files")
    api.upload_file(path_or_fileobj=b"later", path_in_repo="many/later.txt", repo_id=repo_id)
    return repo_id


def test_tree_pages_through_a_large_directory(api, tree_repo, stats):
    stats.reset()
    entries = list(api.list_repo_tree(tree_repo, path_in_repo="many"))
    assert len(entries) == 3 * PAGE_SIZE + 2
    assert stats()["routes"]["tree"] == -(-len(entries) // PAGE_SIZE)  # one request per page
    assert all(isinstance(e, RepoFile) and e.path.startswith("many/") for e in entries)
    assert len({e.path for e in entries}) == len(entries)


def test_tree_root_and_recursive(api, tree_repo):
    top = {e.path: e for e in api.list_repo_tree(tree_repo)}
    assert set(top) == {".gitattributes", "many", "nested", "top.bin"}
    assert isinstance(top["many"], RepoFolder) and len(top["many"].tree_id) == 40
    assert top["top.bin"].lfs.size == 64
    rec = list(api.list_repo_tree(tree_repo, recursive=True))
    paths = [e.path for e in rec]
    assert len(paths) == len(set(paths))
    dirs = {e.path for e in rec if isinstance(e, RepoFolder)}
    assert dirs == {"many", "nested"} | {f"nested/d{i}" for i in range(PAGE_SIZE)}
    files = {e.path for e in rec if isinstance(e, RepoFile)}
    assert len(files) == 1 + (3 * PAGE_SIZE + 2) + PAGE_SIZE + 1
    assert set(api.list_repo_files(tree_repo)) == files


def test_tree_expand_has_last_commit(api, tree_repo):
    entries = {e.path: e for e in api.list_repo_tree(tree_repo, path_in_repo="many", expand=True)}
    assert entries["many/later.txt"].last_commit.title == "Upload many/later.txt with huggingface_hub"
    assert entries["many/file00.txt"].last_commit.title == "many files"
    root = {e.path: e for e in api.list_repo_tree(tree_repo, expand=True)}
    assert root["many"].last_commit.title == "Upload many/later.txt with huggingface_hub"
    assert root[".gitattributes"].last_commit.title == "initial commit"


def test_tree_of_missing_path(api, tree_repo):
    from huggingface_hub.errors import EntryNotFoundError

    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(tree_repo, path_in_repo="nope"))


def test_get_paths_info(api, tree_repo):
    info = api.get_paths_info(tree_repo, ["top.bin", "many", "nested/d1/leaf.txt", "does/not/exist"])
    by_path = {e.path: e for e in info}
    assert set(by_path) == {"top.bin", "many", "nested/d1/leaf.txt"}
    assert isinstance(by_path["many"], RepoFolder)
    leaf = by_path["nested/d1/leaf.txt"]
    assert leaf.size == 4 and leaf.blob_id == "9cfa4e221030f8c85959c448f47e56caadce9d05"
    assert by_path["top.bin"].lfs.pointer_size > 100
    expanded = api.get_paths_info(tree_repo, ["many/later.txt"], expand=True)
    assert expanded[0].last_commit.title == "Upload many/later.txt with huggingface_hub"
