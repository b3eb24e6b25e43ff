"""The error classes clients rely on: missing/private repos, revisions, entries, read tokens."""

import pytest
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)


def test_missing_repo(api, api_anon, cache_dir):
    for client in (api, api_anon):
        with pytest.raises(RepositoryNotFoundError):
            client.model_info("alice/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/does-not-exist", "x.txt", cache_dir=cache_dir)


def test_private_repo_is_invisible_to_others(api, api_anon, api_bob, new_repo, cache_dir):
    repo_id = new_repo(private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=repo_id)
    for client in (api_anon, api_bob):
        with pytest.raises(RepositoryNotFoundError):
            client.model_info(repo_id)
        with pytest.raises(RepositoryNotFoundError):
            client.list_repo_files(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo_id, "s.txt", cache_dir=cache_dir, token=False)
    # The owner reads it.
    assert open(hf_hub_download(repo_id, "s.txt", cache_dir=cache_dir, token=api.token), "rb").read() == b"secret"


def test_missing_revision(api, new_repo, cache_dir):
    repo_id = new_repo()
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo_id, revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, ".gitattributes", revision="no-such-branch", cache_dir=cache_dir)
    with pytest.raises(RevisionNotFoundError):
        api.list_repo_commits(repo_id, revision="no-such-branch")


def test_missing_entry(api, new_repo, cache_dir):
    repo_id = new_repo()
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "nope.txt", cache_dir=cache_dir)
    assert not api.file_exists(repo_id, "nope.txt")
    assert api.file_exists(repo_id, ".gitattributes")


def test_read_token_cannot_write(api, api_read, new_repo):
    repo_id = new_repo()
    # A read token reads...
    assert api_read.model_info(repo_id).id == repo_id
    # ...but every write is refused with 403.
    writes = [
        lambda: api_read.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id),
        lambda: api_read.create_branch(repo_id, branch="b"),
        lambda: api_read.create_tag(repo_id, tag="t"),
        lambda: api_read.create_repo("alice/by-read-token"),
        lambda: api_read.delete_repo(repo_id),
    ]
    for write in writes:
        with pytest.raises(HfHubHTTPError) as e:
            write()
        assert e.value.response.status_code == 403
    assert api.model_info(repo_id).id == repo_id


def test_other_user_cannot_write(api_bob, new_repo):
    repo_id = new_repo()
    with pytest.raises(HfHubHTTPError) as e:
        api_bob.delete_repo(repo_id)
    assert e.value.response.status_code == 403


def test_read_only_user(api_carol, new_repo, cache_dir):
    repo_id = new_repo()
    assert api_carol.whoami()["auth"]["accessToken"]["role"] == "read"
    # Reads public repos of others...
    assert api_carol.model_info(repo_id).id == repo_id
    assert open(hf_hub_download(repo_id, ".gitattributes", cache_dir=cache_dir, token=api_carol.token), "rb").read()
    # ...but cannot create repos, even in its own namespace, nor open pull requests.
    for write in [
        lambda: api_carol.create_repo("carol/mine"),
        lambda: api_carol.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id=repo_id, create_pr=True),
    ]:
        with pytest.raises(HfHubHTTPError) as e:
            write()
        assert e.value.response.status_code == 403
