"""hf_hub_download and snapshot_download, byte-exact, by branch, tag, SHA and PR ref."""

import os

import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download, snapshot_download


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def versioned(api):
    """A dataset repo with distinct content on main, a tag, a `/` branch and a PR."""
    repo_id = "alice/versioned-data"
    api.create_repo(repo_id, repo_type="dataset")
    v1 = {"data/a.csv": b"a,b\n1,2\n", "weights.bin": os.urandom(200_000), "empty.txt": b""}
    api.create_commit(
        repo_id, repo_type="dataset", operations=[CommitOperationAdd(k, v) for k, v in v1.items()],
        commit_message="v1",
    )
    api.create_tag(repo_id, repo_type="dataset", tag="v1")
    sha1 = api.dataset_info(repo_id).sha
    api.create_branch(repo_id, repo_type="dataset", branch="dev/next")
    v2 = dict(v1, **{"data/a.csv": b"a,b\n3,4\n", "extra/b.bin": os.urandom(70_000)})
    api.create_commit(
        repo_id, repo_type="dataset", revision="dev/next",
        operations=[CommitOperationAdd(k, v2[k]) for k in ["data/a.csv", "extra/b.bin"]], commit_message="v2",
    )
    v3 = dict(v1, **{"weights.bin": os.urandom(150_000)})
    pr = api.create_commit(
        repo_id, repo_type="dataset", operations=[CommitOperationAdd("weights.bin", v3["weights.bin"])],
        commit_message="pr", create_pr=True,
    )
    return {"repo": repo_id, "v1": v1, "v2": v2, "v3": v3, "sha1": sha1, "pr": pr.pr_revision}


def revisions(v):
    return [
        ("main", v["v1"]), ("v1", v["v1"]), (v["sha1"], v["v1"]), (v["sha1"][:7], v["v1"]),
        ("dev/next", v["v2"]), (v["pr"], v["v3"]),
    ]


def test_hf_hub_download_each_revision_kind(versioned, cache_dir):
    for rev, files in revisions(versioned):
        for name, content in files.items():
            path = hf_hub_download(versioned["repo"], name, repo_type="dataset", revision=rev, cache_dir=cache_dir)
            assert read(path) == content, (rev, name)


def test_snapshot_download_each_revision_kind(versioned, tmp_path):
    for i, (rev, files) in enumerate(revisions(versioned)):
        local = snapshot_download(
            versioned["repo"], repo_type="dataset", revision=rev, cache_dir=str(tmp_path / f"c{i}")
        )
        got = {}
        for root, _, names in os.walk(local):
            for n in names:
                full = os.path.join(root, n)
                got[os.path.relpath(full, local)] = read(full)
        got.pop(".gitattributes")
        assert got == files, rev


def test_download_to_local_dir(versioned, tmp_path):
    path = hf_hub_download(
        versioned["repo"], "weights.bin", repo_type="dataset", revision="v1", local_dir=str(tmp_path / "out")
    )
    assert read(path) == versioned["v1"]["weights.bin"]
