"""The official client against injected faults: retried 5xx, 429 with Retry-After, and a cut
body resumed with a Range request, all ending in byte-exact files."""

import os

import pytest
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from conftest import control


@pytest.fixture
def faults():
    def set_faults(*specs):
        control("/_emulator/faults", "\n".join(specs).encode())

    yield set_faults
    control("/_emulator/faults", method="DELETE")


@pytest.fixture(scope="module")
def lfs_repo(api):
    repo_id = "alice/faulty"
    api.create_repo(repo_id)
    data = os.urandom(600_000)
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo_id)
    return repo_id, data


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_server_errors_retried_on_api_calls(api, lfs_repo, faults):
    repo_id, data = lfs_repo
    # Paginated API calls go through the client's backoff, which retries 5xx.
    faults("route=api,path=/tree/,every=1,times=2,status=503")
    assert {e.path for e in api.list_repo_tree(repo_id)} == {".gitattributes", "w.bin"}
    assert control("/_emulator/faults")["faults"][0]["injected"] == 2


@pytest.mark.modes("noxet", "legacy")
def test_server_errors_surfaced_on_file_gets(lfs_repo, faults, cache_dir):
    repo_id, data = lfs_repo
    # File GETs retry only 408/429: a 503 from the CDN reaches the caller as an HTTP error.
    faults("route=cdn,every=1,times=1,status=503")
    with pytest.raises(HfHubHTTPError) as e:
        hf_hub_download(repo_id, "w.bin", cache_dir=cache_dir)
    assert e.value.response.status_code == 503
    assert read(hf_hub_download(repo_id, "w.bin", cache_dir=cache_dir)) == data


@pytest.mark.modes("xet")
def test_server_errors_on_xorb_fetches_retried_by_hf_xet(lfs_repo, faults, cache_dir):
    """Where a plain file GET surfaces a 503, hf_xet retries the xorb range (after a backoff)."""
    repo_id, data = lfs_repo
    faults("route=xorb,every=1,times=1,status=503")
    assert read(hf_hub_download(repo_id, "w.bin", cache_dir=cache_dir)) == data
    assert control("/_emulator/faults")["faults"][0]["injected"] == 1


def test_honours_429_retry_after(lfs_repo, faults, cache_dir, mode):
    repo_id, data = lfs_repo
    route = "xorb" if mode == "xet" else "cdn"  # where the file's bytes come from
    faults(f"route={route},every=1,times=1,status=429,retry-after=1")
    assert read(hf_hub_download(repo_id, "w.bin", cache_dir=cache_dir)) == data
    assert control("/_emulator/faults")["faults"][0]["injected"] == 1


@pytest.mark.modes("noxet", "legacy")
def test_resumes_a_cut_download(lfs_repo, faults, cache_dir, stats):
    repo_id, data = lfs_repo
    faults("route=cdn,every=1,times=1,cut-after=100000")
    stats.reset()
    assert read(hf_hub_download(repo_id, "w.bin", cache_dir=cache_dir)) == data
    s = stats()
    assert s["faults_injected"] == 1
    assert s["cdn_requests"] == 2  # the cut request, then a ranged resume
    assert s["bytes_served"] < len(data) + 2 * 1024 * 1024


@pytest.mark.modes("xet")
def test_hf_xet_refetches_a_cut_xorb_range(lfs_repo, faults, cache_dir, stats):
    repo_id, data = lfs_repo
    faults("route=xorb,every=1,times=1,cut-after=100000")
    stats.reset()
    assert read(hf_hub_download(repo_id, "w.bin", cache_dir=cache_dir)) == data
    s = stats()
    assert s["faults_injected"] == 1
    assert s["xorb_fetches"] == 2, s  # the cut fetch, then the same range again
    assert s["cas_bytes_served"] < 2 * len(data) + 64 * 1024


def test_space_files_download(api, new_repo, cache_dir):
    repo_id = new_repo(repo_type="space", space_sdk="static")
    api.upload_file(path_or_fileobj=b"<html></html>", path_in_repo="index.html", repo_id=repo_id, repo_type="space")
    path = hf_hub_download(repo_id, "index.html", repo_type="space", cache_dir=cache_dir)
    assert read(path) == b"<html></html>"
