"""Test repos, created through the official huggingface_hub client, with local copies of every
file so tests can compare what the mount shows against the originals."""

import json
import random
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

MIB = 1 << 20


def _write(path: Path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def det_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def make_model_dir(root: Path):
    """A small model: safetensors weights, configs, tricky names, deep and wide directories."""
    rng = np.random.default_rng(7)
    tensors = {f"layers.{i}.weight": rng.standard_normal((64, 128), dtype=np.float32) for i in range(24)}
    tensors["embed.weight"] = rng.standard_normal((1000, 256), dtype=np.float32)
    tensors["ids"] = np.arange(4096, dtype=np.int64)
    root.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(root / "model.safetensors"), metadata={"format": "np"})
    _write(root / "config.json", json.dumps({"model_type": "tiny", "hidden_size": 128, "layers": 24}, indent=2).encode())
    _write(root / "tokenizer.json", json.dumps({"version": "1.0", "vocab": {f"tok{i}": i for i in range(500)}}).encode())
    _write(root / "README.md", b"---\nlicense: mit\n---\n# tiny model\n")
    _write(root / "nested/a/b/c/deep.txt", b"deep file\n")
    _write(root / "names with spaces.txt", b"spaces\n")
    _write(root / "unicod\u00e9 \u00f1.txt", "unicode \u2713\n".encode())
    _write(root / "hash#file.txt", b"hash\n")
    _write(root / "per%cent.txt", b"percent\n")
    _write(root / "empty.txt", b"")
    for i in range(120):
        _write(root / f"many/file{i:03d}.txt", f"file {i}\n".encode() * (i + 1))
    # LFS by size (binary, > 10 MiB) and by extension.
    _write(root / "big.bin", det_bytes(40 * MIB + 12345, 1))
    _write(root / "weights/small.pt", det_bytes(3000, 2))
    return tensors


def seed(api, originals: Path):
    """Creates every test repo; returns facts the tests need (commit ids, names)."""
    facts = {}
    model = originals / "tiny-model"
    facts["tensors"] = make_model_dir(model)
    repo = "alice/tiny-model"
    api.create_repo(repo)
    first = api.upload_folder(repo_id=repo, folder_path=str(model), commit_message="initial upload")
    facts["first_commit"] = first.oid
    api.create_tag(repo, tag="v1.0")
    # A branch with a '/' in its name, diverging from main.
    api.create_branch(repo, branch="feature/x")
    api.upload_file(repo_id=repo, path_or_fileobj=b'{"model_type": "tiny", "variant": "x"}',
                    path_in_repo="config.json", revision="feature/x")
    api.upload_file(repo_id=repo, path_or_fileobj=b"only on the branch\n",
                    path_in_repo="branch-only.txt", revision="feature/x")
    # A pull request.
    pr = api.upload_file(repo_id=repo, path_or_fileobj=b"proposed\n", path_in_repo="pr-file.txt", create_pr=True)
    facts["pr_ref"] = pr.pr_revision
    # main moves on after the tag.
    second = api.upload_file(repo_id=repo, path_or_fileobj=b"second commit\n", path_in_repo="later.txt")
    facts["main_commit"] = second.oid
    _write(originals / "later.txt", b"second commit\n")

    api.create_repo("alice/private-model", private=True)
    api.upload_file(repo_id="alice/private-model", path_or_fileobj=b"secret weights\n", path_in_repo="secret.txt")

    data = originals / "tiny-data"
    _write(data / "data/train.csv", b"a,b\n" + b"".join(f"{i},{i*i}\n".encode() for i in range(2000)))
    _write(data / "data/test.jsonl", b"".join(json.dumps({"i": i}).encode() + b"\n" for i in range(500)))
    _write(data / "README.md", b"# tiny dataset\n")
    api.create_repo("alice/tiny-data", repo_type="dataset")
    api.upload_folder(repo_id="alice/tiny-data", repo_type="dataset", folder_path=str(data))

    space = originals / "app"
    _write(space / "app.py", b"print('hello')\n")
    _write(space / "requirements.txt", b"gradio\n")
    api.create_repo("alice/app", repo_type="space", space_sdk="gradio")
    api.upload_folder(repo_id="alice/app", repo_type="space", folder_path=str(space))

    # The same big blob in another repo (an org's): content-addressed cache shares it.
    api.create_repo("acme/shared")
    api.upload_file(repo_id="acme/shared", path_or_fileobj=str(model / "big.bin"), path_in_repo="copy-of-big.bin")
    return facts
