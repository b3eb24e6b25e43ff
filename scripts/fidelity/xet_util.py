"""Helpers for the Xet tests: big files written in pieces, streaming digests, and the official
client run in a child process.

A child process is needed whenever an `HF_XET_*` knob must change: hf_xet builds its runtime and
its configuration (API versions, concurrency, fetch sizes) once per process, from the environment.
"""

import hashlib
import json
import os
import subprocess
import sys

PIECE = 8 << 20


def write_random(path, size, seed_bytes=None):
    """Writes `size` random bytes to `path` in 8 MiB pieces; returns the sha256 hex."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            piece = os.urandom(min(PIECE, left))
            f.write(piece)
            h.update(piece)
            left -= len(piece)
    return h.hexdigest()


def copy_with_patch(src, dst, offset, patch):
    """Copies `src` to `dst` with `patch` written over the bytes at `offset`; returns the sha256 hex."""
    h = hashlib.sha256()
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        pos = 0
        while True:
            piece = fi.read(PIECE)
            if not piece:
                break
            lo, hi = max(offset, pos), min(offset + len(patch), pos + len(piece))
            if lo < hi:
                piece = piece[: lo - pos] + patch[lo - offset : hi - offset] + piece[hi - pos :]
            fo.write(piece)
            h.update(piece)
            pos += len(piece)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(PIECE):
            h.update(piece)
    return h.hexdigest()


# Runs in the child: argv[1] is a JSON job; prints one JSON line with the results.
_CHILD = r"""
import json, sys
from huggingface_hub import HfApi, hf_hub_download
job = json.loads(sys.argv[1])
api = HfApi(token=job["token"])
out = {}
for step in job["steps"]:
    if step["op"] == "upload":
        api.upload_file(path_or_fileobj=step["src"], path_in_repo=step["path"], repo_id=job["repo"])
    elif step["op"] == "download":
        out[step["path"]] = hf_hub_download(job["repo"], step["path"], cache_dir=step["cache_dir"])
print(json.dumps(out))
"""


def run_client(endpoint, token, repo, steps, hf_home, env=None, timeout=240):
    """Runs upload/download `steps` with the official client (Xet on unless `env` says otherwise)
    in a child process with its own HF_HOME; returns {path: local file} for downloads."""
    child_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HF_XET_", "HF_HUB_DISABLE_XET"))
    }
    child_env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(hf_home),
        HF_XET_CACHE=os.path.join(str(hf_home), "xet"),
    )
    child_env.update(env or {})
    job = json.dumps({"token": token, "repo": repo, "steps": steps})
    r = subprocess.run(
        [sys.executable, "-c", _CHILD, job], env=child_env, capture_output=True, text=True, timeout=timeout
    )
    if r.returncode != 0:
        raise AssertionError(f"client failed ({r.returncode}):\n{r.stderr[-4000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])
