"""Creating, describing, listing and deleting repos of every type."""

import pytest
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from conftest import PAGE_SIZE


@pytest.mark.parametrize("repo_type", ["model", "dataset", "space"])
@pytest.mark.parametrize("private", [False, True])
def test_create_repo_of_each_type(api, api_anon, endpoint, new_repo, repo_type, private):
    kwargs = {"space_sdk": "gradio"} if repo_type == "space" else {}
    repo_id = new_repo(repo_type=repo_type, private=private, **kwargs)
    info = api.repo_info(repo_id, repo_type=repo_type)
    assert info.id == repo_id
    assert info.private is private
    assert len(info.sha) == 40
    # A new repo has one commit with the default .gitattributes.
    assert [s.rfilename for s in info.siblings] == [".gitattributes"]
    commits = api.list_repo_commits(repo_id, repo_type=repo_type)
    assert [c.title for c in commits] == ["initial commit"]
    if repo_type == "space":
        assert info.sdk == "gradio"
        assert info.runtime.stage == "RUNNING"
    if private:
        with pytest.raises(RepositoryNotFoundError):
            api_anon.repo_info(repo_id, repo_type=repo_type)
    else:
        assert api_anon.repo_info(repo_id, repo_type=repo_type).id == repo_id
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    url = api.create_repo(repo_id, repo_type=repo_type, exist_ok=True, **kwargs)
    assert url == f"{endpoint}/{prefix}{repo_id}"
    assert url.repo_id == repo_id and url.repo_type == repo_type


def test_create_existing_repo_conflicts(api, new_repo):
    repo_id = new_repo()
    with pytest.raises(HfHubHTTPError) as e:
        api.create_repo(repo_id)
    assert e.value.response.status_code == 409
    # Repo ids are case-insensitive.
    with pytest.raises(HfHubHTTPError) as e:
        api.create_repo(repo_id.upper())
    assert e.value.response.status_code == 409


def test_org_repos_need_membership(api, api_bob):
    api.create_repo("acme/shared-model")
    assert api.model_info("acme/shared-model").author == "acme"
    with pytest.raises(HfHubHTTPError) as e:
        api_bob.create_repo("acme/bobs-model")
    assert e.value.response.status_code == 403


def test_case_insensitive_ids_resolve_to_canonical(api, new_repo):
    repo_id = new_repo()
    info = api.model_info(repo_id.upper())
    assert info.id == repo_id


def test_repo_info_with_files_metadata(api, new_repo):
    repo_id = new_repo()
    api.upload_file(path_or_fileobj=b"x" * 10, path_in_repo="a.txt", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"\0" * 20, path_in_repo="w.bin", repo_id=repo_id)
    info = api.model_info(repo_id, files_metadata=True)
    files = {s.rfilename: s for s in info.siblings}
    assert files["a.txt"].size == 10 and files["a.txt"].lfs is None
    assert files["a.txt"].blob_id == "72035e10b5524757f990eb198acfce358b268c12"  # git hash-object
    assert files["w.bin"].lfs.size == 20
    import hashlib

    assert files["w.bin"].lfs.sha256 == hashlib.sha256(b"\0" * 20).hexdigest()
    assert info.last_modified is not None and info.created_at is not None


def test_delete_repo(api, new_repo):
    repo_id = new_repo(repo_type="dataset")
    api.delete_repo(repo_id, repo_type="dataset")
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info(repo_id)
    api.delete_repo(repo_id, repo_type="dataset", missing_ok=True)
    # The name can be used again.
    api.create_repo(repo_id, repo_type="dataset")
    assert api.dataset_info(repo_id).id == repo_id


def test_list_models_by_author_across_pages(api, api_bob, api_anon):
    made = [f"bob/listed-{i}" for i in range(PAGE_SIZE + 3)]
    for r in made:
        api_bob.create_repo(r)
    api_bob.create_repo("bob/hidden-listed", private=True)
    listed = [m.id for m in api_anon.list_models(author="bob")]
    assert sorted(listed) == sorted(made)
    # The owner also sees their private repo; search filters by substring.
    assert "bob/hidden-listed" in [m.id for m in api_bob.list_models(author="bob")]
    assert [m.id for m in api_anon.list_models(author="bob", search="listed-1")] == ["bob/listed-1"]
    assert len(list(api_anon.list_models(author="bob", limit=2))) == 2


def test_list_datasets_and_spaces(api, new_repo):
    ds = new_repo(repo_type="dataset")
    sp = new_repo(repo_type="space", space_sdk="static")
    assert ds in [d.id for d in api.list_datasets(author="alice")]
    assert sp in [s.id for s in api.list_spaces(author="alice")]
    full = [m for m in api.list_datasets(author="alice", full=True) if m.id == ds][0]
    assert [s.rfilename for s in full.siblings] == [".gitattributes"]


def test_update_visibility(api, api_anon, new_repo):
    repo_id = new_repo()
    api.update_repo_settings(repo_id, private=True)
    assert api.model_info(repo_id).private is True
    with pytest.raises(RepositoryNotFoundError):
        api_anon.model_info(repo_id)
    api.update_repo_settings(repo_id, private=False)
    assert api_anon.model_info(repo_id).private is False
    api.update_repo_settings(repo_id, gated="auto")
    assert api_anon.model_info(repo_id).gated == "auto"
