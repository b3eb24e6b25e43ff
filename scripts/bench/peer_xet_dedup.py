"""huggingface_hub with hf_xet for the v1 -> v2 dedup workload (`w_xet_dedup`), run in its own
process (HF_ENDPOINT, HF_HOME, HF_XET_CACHE and HF_TOKEN from the environment). Prints one JSON
line; only the library call is timed.

  peer_xet_dedup.py seed REPO LOCAL PATH              create_repo (exist_ok), upload_file; the commit
  peer_xet_dedup.py download REPO PATH REVISION       hf_hub_download of PATH at REVISION"""

import json
import os
import sys
import time

from huggingface_hub import HfApi, hf_hub_download


def main():
    cmd, repo, *rest = sys.argv[1:]
    t0 = time.perf_counter()
    if cmd == "seed":
        local, path = rest
        api = HfApi()
        api.create_repo(repo, exist_ok=True)
        info = api.upload_file(repo_id=repo, path_or_fileobj=local, path_in_repo=path)
        out = {"seconds": time.perf_counter() - t0, "commit": info.oid}
    elif cmd == "download":
        path, revision = rest
        got = hf_hub_download(repo, path, revision=revision)
        out = {"seconds": time.perf_counter() - t0, "bytes": os.path.getsize(got)}
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
