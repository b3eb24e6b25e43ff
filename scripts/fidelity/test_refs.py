"""Branches (including names with `/`), tags, pull requests, refs and commit history."""

import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

from conftest import PAGE_SIZE


def test_branches_and_tags(api, new_repo):
    repo_id = new_repo()
    api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id=repo_id)
    v1 = api.model_info(repo_id).sha
    api.create_branch(repo_id, branch="feature/x")
    api.create_tag(repo_id, tag="v1.0", tag_message="first")
    api.upload_file(path_or_fileobj=b"on-branch", path_in_repo="f.txt", repo_id=repo_id, revision="feature/x")
    refs = api.list_repo_refs(repo_id)
    branches = {b.name: b.target_commit for b in refs.branches}
    assert set(branches) == {"main", "feature/x"}
    assert branches["main"] == v1 and branches["feature/x"] != v1
    assert [(t.name, t.ref, t.target_commit) for t in refs.tags] == [("v1.0", "refs/tags/v1.0", v1)]
    assert refs.converts == [] and refs.pull_requests is None
    assert api.model_info(repo_id, revision="feature/x").sha == branches["feature/x"]
    assert api.model_info(repo_id, revision="v1.0").sha == v1

    with pytest.raises(HfHubHTTPError) as e:
        api.create_branch(repo_id, branch="feature/x")
    assert e.value.response.status_code == 409
    api.create_branch(repo_id, branch="feature/x", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as e:
        api.create_tag(repo_id, tag="v1.0")
    assert e.value.response.status_code == 409
    with pytest.raises(HfHubHTTPError) as e:
        api.create_branch(repo_id, branch="refs/pr/5")
    assert e.value.response.status_code == 400

    api.create_branch(repo_id, branch="from-tag", revision="v1.0")
    assert api.model_info(repo_id, revision="from-tag").sha == v1
    api.delete_branch(repo_id, branch="from-tag")
    api.delete_tag(repo_id, tag="v1.0")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo_id, revision="v1.0")
    with pytest.raises(RevisionNotFoundError):
        api.delete_branch(repo_id, branch="no-such-branch")
    with pytest.raises(HfHubHTTPError):
        api.delete_branch(repo_id, branch="main")


def test_create_pr(api, api_bob, new_repo):
    repo_id = new_repo()
    base = api.model_info(repo_id).sha
    # bob cannot push to alice's main but can open a pull request.
    with pytest.raises(HfHubHTTPError) as e:
        api_bob.upload_file(path_or_fileobj=b"x", path_in_repo="bob.txt", repo_id=repo_id)
    assert e.value.response.status_code == 403
    info = api_bob.create_commit(
        repo_id, operations=[CommitOperationAdd("bob.txt", b"from bob")], commit_message="Bob's PR", create_pr=True
    )
    assert info.pr_revision == "refs/pr/1" and info.pr_num == 1
    assert info.pr_url.endswith(f"/{repo_id}/discussions/1")
    # The PR ref holds the new commit; main did not move.
    assert api.model_info(repo_id).sha == base
    assert api.model_info(repo_id, revision="refs/pr/1").sha == info.oid
    prs = api.list_repo_refs(repo_id, include_pull_requests=True).pull_requests
    assert [(p.name, p.ref, p.target_commit) for p in prs] == [("1", "refs/pr/1", info.oid)]
    # Pushing more commits to the PR ref.
    api_bob.upload_file(path_or_fileobj=b"more", path_in_repo="more.txt", repo_id=repo_id, revision="refs/pr/1")
    pr_commits = api.list_repo_commits(repo_id, revision="refs/pr/1")
    assert [c.title for c in pr_commits][:2] == ["Upload more.txt with huggingface_hub", "Bob's PR"]
    assert pr_commits[-1].commit_id == base
    # A second PR gets the next number.
    info2 = api.upload_file(path_or_fileobj=b"y", path_in_repo="y.txt", repo_id=repo_id, create_pr=True)
    assert info2.pr_num == 2


def test_commit_history_pagination(api, new_repo):
    repo_id = new_repo()
    n = PAGE_SIZE * 2 + 2
    for i in range(n):
        api.upload_file(path_or_fileobj=str(i).encode(), path_in_repo=f"f{i}.txt", repo_id=repo_id)
    commits = api.list_repo_commits(repo_id)
    assert len(commits) == n + 1
    assert commits[0].title == f"Upload f{n - 1}.txt with huggingface_hub"
    assert commits[-1].title == "initial commit"
    assert all(c.authors == ["alice"] for c in commits[:-1])
    assert len({c.commit_id for c in commits}) == n + 1
    formatted = api.list_repo_commits(repo_id, formatted=True)
    assert formatted[0].formatted_title == commits[0].title
