"""Interop with the huggingface_hub cache: files the official client already downloaded
(`hf_hub_download` into HF_HUB_CACHE) are served from there, verified, with no file bytes from
the Hub; a tampered copy is never served; `hubfs warm` shows progress on a terminal and leaves
the files cached."""

import os
import pty
import random
import select
import subprocess
import time
import uuid
from pathlib import Path

from conftest import HUBFS, WRITE_TOKEN, bytes_served, hubfs_env, sha

MIB = 1 << 20


def make_repo(api, tmp_path, extra=()):
    """A repo with a regular file, an LFS file and a nested file; returns (repo_id, local dir)."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    rng = random.Random(uuid.uuid4().int)
    (src / "config.json").write_text('{"model_type": "tiny", "seed": %d}\n' % rng.randrange(1 << 30))
    (src / "weights.bin").write_bytes(rng.randbytes(3 * MIB + 777))
    (src / "sub" / "notes.txt").write_bytes(rng.randbytes(5000))
    for name in extra:
        (src / name).write_bytes(rng.randbytes(70_000))
    repo = f"alice/hfc-{uuid.uuid4().hex[:8]}"
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=str(src), commit_message="seed")
    return repo, src


def download(emulator, repo, names, hf_cache):
    from huggingface_hub import hf_hub_download
    for name in names:
        hf_hub_download(repo, name, cache_dir=str(hf_cache), endpoint=emulator.url, token=WRITE_TOKEN)


FILES = ["config.json", "weights.bin", "sub/notes.txt"]


def test_files_in_the_hf_cache_are_served_with_no_file_bytes(api, emulator, mount, tmp_path):
    repo, src = make_repo(api, tmp_path, extra=["not-downloaded.dat"])
    hf_cache = tmp_path / "hf-cache"
    download(emulator, repo, FILES, hf_cache)
    m = mount(repo, env_extra={"HF_HUB_CACHE": str(hf_cache)})
    before = bytes_served(emulator)
    for name in FILES:
        assert sha(m / name) == sha(src / name), name
    assert bytes_served(emulator) == before, "files in the HF cache were fetched again"
    # A file the HF cache does not hold is fetched as usual.
    assert sha(m / "not-downloaded.dat") == sha(src / "not-downloaded.dat")
    assert bytes_served(emulator) - before >= 70_000
    assert m.status()["daemon"]["hf_cache"] == str(hf_cache)


def test_a_tampered_blob_in_the_hf_cache_is_not_used(api, emulator, mount, tmp_path):
    repo, src = make_repo(api, tmp_path)
    hf_cache = tmp_path / "hf-cache"
    download(emulator, repo, FILES, hf_cache)
    blobs = hf_cache / f"models--{repo.replace('/', '--')}" / "blobs"
    big = next(p for p in blobs.iterdir() if p.stat().st_size == (src / "weights.bin").stat().st_size)
    data = bytearray(big.read_bytes())
    data[MIB + 5] ^= 0xFF  # same size, one byte different
    big.write_bytes(bytes(data))
    m = mount(repo, env_extra={"HF_HUB_CACHE": str(hf_cache)})
    before = bytes_served(emulator)
    assert sha(m / "weights.bin") == sha(src / "weights.bin")
    assert bytes_served(emulator) - before >= (src / "weights.bin").stat().st_size
    assert "does not match its digest" in m.log.read_text()
    # The untouched files still come from the HF cache.
    mid = bytes_served(emulator)
    assert sha(m / "config.json") == sha(src / "config.json")
    assert bytes_served(emulator) == mid


def test_no_hf_cache_fetches_from_the_hub(api, emulator, mount, tmp_path):
    repo, src = make_repo(api, tmp_path)
    hf_cache = tmp_path / "hf-cache"
    download(emulator, repo, ["weights.bin"], hf_cache)
    m = mount(repo, args=["--no-hf-cache"], env_extra={"HF_HUB_CACHE": str(hf_cache)})
    before = bytes_served(emulator)
    assert sha(m / "weights.bin") == sha(src / "weights.bin")
    assert bytes_served(emulator) - before >= (src / "weights.bin").stat().st_size
