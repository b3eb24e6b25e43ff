"""huggingface_hub as a contender, run in its own process (HF_ENDPOINT and HF_HOME come from the
environment, and HF_TOKEN for uploads). Imports happen before the clock starts: only the library
call is timed. Prints one JSON line.

  peer_hf.py download REPO_TYPE REPO FILE [FILE...]   hf_hub_download, files in parallel threads
  peer_hf.py list REPO_TYPE REPO                      list_repo_tree(recursive=True), consumed
  peer_hf.py first-byte REPO_TYPE REPO FILE           hf_hub_download, then read one byte
  peer_hf.py upload REPO_TYPE REPO LOCAL PATH         upload_file, or upload_folder for a folder
  peer_hf.py seed REPO_TYPE REPO LOCAL PATH           create_repo (exist_ok), then upload
  peer_hf.py bucket-sync bucket BUCKET LOCAL PREFIX   sync_bucket (`hf buckets sync`) of a folder"""

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from huggingface_hub import HfApi, hf_hub_download


def download(repo_type, repo, files):
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        paths = list(pool.map(lambda f: hf_hub_download(repo, f, repo_type=repo_type), files))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "bytes": sum(os.path.getsize(p) for p in paths), "paths": paths}


def list_tree(repo_type, repo):
    api = HfApi()
    t0 = time.perf_counter()
    entries = sum(1 for _ in api.list_repo_tree(repo, repo_type=repo_type, recursive=True))
    return {"seconds": time.perf_counter() - t0, "entries": entries}


def first_byte(repo_type, repo, file):
    t0 = time.perf_counter()
    path = hf_hub_download(repo, file, repo_type=repo_type)
    with open(path, "rb") as f:
        assert len(f.read(1)) == 1
    return {"seconds": time.perf_counter() - t0}


def upload(repo_type, repo, local, path_in_repo):
    api = HfApi()
    t0 = time.perf_counter()
    if os.path.isdir(local):
        api.upload_folder(repo_id=repo, repo_type=repo_type, folder_path=local, path_in_repo=path_in_repo)
    else:
        api.upload_file(repo_id=repo, repo_type=repo_type, path_or_fileobj=local, path_in_repo=path_in_repo)
    return {"seconds": time.perf_counter() - t0}


def bucket_sync(bucket, local, prefix):
    api = HfApi()
    t0 = time.perf_counter()
    api.sync_bucket(local, f"hf://buckets/{bucket}/{prefix}", quiet=True)
    return {"seconds": time.perf_counter() - t0}


def main():
    cmd, repo_type, repo, *rest = sys.argv[1:]
    if cmd == "download":
        out = download(repo_type, repo, rest)
    elif cmd == "list":
        out = list_tree(repo_type, repo)
    elif cmd == "first-byte":
        out = first_byte(repo_type, repo, rest[0])
    elif cmd == "upload":
        out = upload(repo_type, repo, *rest)
    elif cmd == "bucket-sync":
        out = bucket_sync(repo, *rest)
    elif cmd == "seed":
        HfApi().create_repo(repo, repo_type=repo_type, exist_ok=True)
        out = upload(repo_type, repo, *rest)
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
