"""Helpers for the writable-mount tests: a fresh repo per test, `hubfs sync`, and checks of
what landed on the Hub through the official client."""

import itertools
import os
import subprocess
import uuid

from conftest import HUBFS

_counter = itertools.count()


def fresh_repo(api, files=None, private=False):
    """A new model repo owned by alice, optionally with initial files {path: bytes}."""
    from huggingface_hub import CommitOperationAdd
    repo = f"alice/w-{uuid.uuid4().hex[:10]}-{next(_counter)}"
    api.create_repo(repo, private=private)
    if files:
        ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=d) for p, d in files.items()]
        api.create_commit(repo, operations=ops, commit_message="seed")
    return repo


def hub_sync(mount, timeout=120):
    return subprocess.run([HUBFS, "sync", "--timeout", str(timeout), str(mount.path)],
                          capture_output=True, text=True, timeout=timeout + 60)


def synced(mount, timeout=120):
    r = hub_sync(mount, timeout)
    assert r.returncode == 0, f"hubfs sync failed: {r.stdout}{r.stderr}"


def hub_files(api, repo, revision=None):
    return sorted(api.list_repo_files(repo, revision=revision))


def hub_bytes(api, repo, path, revision=None):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = api.hf_hub_download(repo, path, revision=revision, local_dir=d)
        with open(p, "rb") as f:
            return f.read()


def commits(api, repo, revision=None):
    return api.list_repo_commits(repo, revision=revision)


def write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)


def fsync_write(path, data: bytes):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
