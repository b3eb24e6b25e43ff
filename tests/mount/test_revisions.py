"""Every kind of revision, through single-repo mounts and through the whole-Hub tree."""

import os
import urllib.parse

import pytest


def read(p):
    with open(p, "rb") as f:
        return f.read()


def test_single_repo_mounts_of_each_revision_kind(seeded, originals, mount):
    orig_config = (originals / "tiny-model/config.json").read_bytes()
    main = mount("alice/tiny-model")
    assert read(main / "later.txt") == b"second commit\n"
    assert read(main / "config.json") == orig_config
    tag = mount("hf://alice/tiny-model@v1.0")
    assert not os.path.exists(tag / "later.txt")
    full_sha = mount(f"alice/tiny-model@{seeded['first_commit']}")
    assert sorted(os.listdir(full_sha.path)) == sorted(os.listdir(tag.path))
    short_sha = mount(f"alice/tiny-model@{seeded['first_commit'][:8]}")
    assert read(short_sha / "config.json") == orig_config
    branch = mount("alice/tiny-model@feature%2Fx")
    assert read(branch / "branch-only.txt") == b"only on the branch\n"
    assert b"variant" in read(branch / "config.json")
    pr = mount("alice/tiny-model@" + urllib.parse.quote(seeded["pr_ref"], safe=""))
    assert read(pr / "pr-file.txt") == b"proposed\n"
    literal_pr = mount("hf://alice/tiny-model@" + seeded["pr_ref"])
    assert read(literal_pr / "pr-file.txt") == b"proposed\n"
    sub = mount("alice/tiny-model@v1.0/nested/a")
    assert read(sub / "b/c/deep.txt") == b"deep file\n"
    ds = mount("datasets/alice/tiny-data")
    assert read(ds / "data/train.csv") == (originals / "tiny-data/data/train.csv").read_bytes()
    space = mount("spaces/alice/app")
    assert read(space / "app.py") == b"print('hello')\n"


def test_whole_hub_tree(seeded, originals, mount):
    hub = mount("hf://")
    assert sorted(os.listdir(hub.path)) == ["buckets", "datasets", "spaces"]
    repo = hub / "alice/tiny-model"
    assert read(repo / "later.txt") == b"second commit\n"
    assert "tiny-model" in os.listdir(hub / "alice")
    assert "private-model" in os.listdir(hub / "alice"), "alice's token sees her private repo"
    assert read(hub / "alice/tiny-model@v1.0/config.json") == (originals / "tiny-model/config.json").read_bytes()
    assert not os.path.exists(hub / "alice/tiny-model@v1.0/later.txt")
    assert read(hub / "alice/tiny-model@feature%2Fx/branch-only.txt") == b"only on the branch\n"
    assert read(hub / f"alice/tiny-model@{seeded['first_commit']}/empty.txt") == b""
    assert os.path.isdir(hub / f"alice/tiny-model@{seeded['first_commit'][:10]}")
    pr = urllib.parse.quote(seeded["pr_ref"], safe="")
    assert read(hub / f"alice/tiny-model@{pr}/pr-file.txt") == b"proposed\n"
    assert read(hub / "datasets/alice/tiny-data/data/test.jsonl") == (originals / "tiny-data/data/test.jsonl").read_bytes()
    assert os.listdir(hub / "datasets/alice") == ["tiny-data"]
    assert read(hub / "spaces/alice/app/requirements.txt") == b"gradio\n"
    assert read(hub / "acme/shared/copy-of-big.bin")[:100] == (originals / "tiny-model/big.bin").read_bytes()[:100]
    for missing in ["alice/no-such-repo", "alice/tiny-model@no-such-branch", "nobody-at-all",
                    "datasets/alice/tiny-model", "alice/tiny-model/no-such-file"]:
        assert not os.path.exists(hub / missing), missing
    with pytest.raises(FileNotFoundError):
        os.stat(hub / "alice/tiny-model@deadbeef00")
