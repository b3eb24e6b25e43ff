"""Private repos: visible with a token that can read them, never without."""

import errno
import os

import pytest

from conftest import OTHER_TOKEN, READ_TOKEN, run_mount, is_mounted


def test_private_repo_with_its_owners_token(seeded, mount):
    m = mount("alice/private-model")
    assert (m / "secret.txt").read_bytes() == b"secret weights\n"


@pytest.mark.parametrize("token", ["", OTHER_TOKEN, READ_TOKEN])
def test_private_repo_mount_refused_without_access(seeded, emulator, tmp_path, token):
    mp = tmp_path / "mnt"
    r = run_mount("alice/private-model", mp, emulator, token=token, cache_dir=tmp_path / "c")
    assert r.returncode != 0
    assert not is_mounted(mp)
    msg = r.stderr.strip()
    assert len(msg.splitlines()) == 1, msg
    if token == "":
        assert "token" in msg.lower() or "auth" in msg.lower(), msg
    else:
        assert "not found" in msg.lower(), msg
    assert token == "" or token not in msg


def test_whole_hub_without_token_hides_private_repos(seeded, mount):
    hub = mount("hf://", token="")
    assert "private-model" not in os.listdir(hub / "alice")
    with pytest.raises(OSError) as e:
        os.stat(hub / "alice/private-model")
    assert e.value.errno in (errno.EACCES, errno.ENOENT)
    assert (hub / "alice/tiny-model/later.txt").read_bytes() == b"second commit\n"


def test_bad_token_is_reported(seeded, emulator, tmp_path):
    r = run_mount("alice/tiny-model", tmp_path / "m", emulator, token="hf_not_a_real_token", cache_dir=tmp_path / "c")
    assert r.returncode != 0
    assert "hf_not_a_real_token" not in r.stderr
    assert "token" in r.stderr.lower() or "credentials" in r.stderr.lower(), r.stderr
