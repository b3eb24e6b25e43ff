"""whoami-v2 and token handling."""

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError


def test_whoami_reports_user_role_and_orgs(api, api_read, api_bob):
    me = api.whoami()
    assert me["name"] == "alice"
    assert me["type"] == "user"
    assert me["auth"]["accessToken"]["role"] == "write"
    assert [o["name"] for o in me["orgs"]] == ["acme"]
    assert api_read.whoami()["auth"]["accessToken"]["role"] == "read"
    bob = api_bob.whoami()
    assert bob["name"] == "bob" and bob["orgs"] == []


def test_whoami_with_unknown_token_is_refused():
    with pytest.raises(HfHubHTTPError) as e:
        HfApi(token="hf_not_a_token").whoami()
    assert e.value.response.status_code == 401


def test_auth_check(api, api_anon, new_repo):
    repo = new_repo(private=True)
    api.auth_check(repo)
    from huggingface_hub.errors import RepositoryNotFoundError

    with pytest.raises(RepositoryNotFoundError):
        api_anon.auth_check(repo)
