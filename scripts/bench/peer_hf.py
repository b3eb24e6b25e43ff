"""huggingface_hub as a contender, run in its own process (HF_ENDPOINT and HF_HOME come from the
environment). Imports happen before the clock starts: only the library call is timed. Prints one
JSON line.

  peer_hf.py download REPO_TYPE REPO FILE [FILE...]   hf_hub_download, files in parallel threads
  peer_hf.py list REPO_TYPE REPO                      list_repo_tree(recursive=True), consumed
  peer_hf.py first-byte REPO_TYPE REPO FILE           hf_hub_download, then read one byte"""

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


def main():
    cmd, repo_type, repo, *rest = sys.argv[1:]
    if cmd == "download":
        out = download(repo_type, repo, rest)
    elif cmd == "list":
        out = list_tree(repo_type, repo)
    elif cmd == "first-byte":
        out = first_byte(repo_type, repo, rest[0])
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
