"""Sequences found by the reference-model test (test_write_model.py), shrunk by hypothesis and
kept as named tests. Each states what a local file system does and what hubfs did."""

import os

from crash_lib import kill_daemon
from writes_lib import fresh_repo, hub_files, synced, write


def test_mkdir_over_an_unlinked_file_survives_kill_9(api, mount, tmp_path):
    # Found as: create a, unlink a, mkdir a, kill -9 + remount -> `a` was gone. The journal
    # keeps both the pending delete of file `a` and the local directory `a`; the replay let
    # the delete hide the directory.
    repo = fresh_repo(api)
    cache = tmp_path / "cache"
    m = mount(repo, cache_dir=cache, name="m1")
    write(m / "a", b"")
    os.unlink(m / "a")
    os.mkdir(m / "a")
    kill_daemon(m.path)
    m2 = mount(repo, cache_dir=cache, name="m2")
    assert (m2 / "a").is_dir(), "a directory made with mkdir stays until rmdir"
    assert os.listdir(m2 / "a") == []
    synced(m2)
    assert (m2 / "a").is_dir()
    assert "a" not in hub_files(api, repo)


def test_a_closed_empty_file_in_a_new_directory_survives_kill_9(api, mount, tmp_path):
    # Found as: mkdir b, write b/a "" (close returned), kill -9 + remount -> b/a was gone.
    repo = fresh_repo(api)
    cache = tmp_path / "cache"
    m = mount(repo, cache_dir=cache, name="m1")
    os.mkdir(m / "b")
    write(m / "b/a", b"")
    write(m / "top", b"")
    kill_daemon(m.path)
    m2 = mount(repo, cache_dir=cache, name="m2")
    assert sorted(os.listdir(m2 / "b")) == ["a"], "a file whose close returned survives kill -9"
    assert (m2 / "top").read_bytes() == b""
    synced(m2)
    assert {"b/a", "top"} <= set(hub_files(api, repo))


def test_a_local_subdirectory_survives_a_file_created_beside_it_and_kill_9(api, mount, tmp_path):
    # Found as: mkdir a, kill, mkdir a/a, kill, write a/b, kill -> a/a was gone (a and a/b stayed).
    repo = fresh_repo(api)
    cache = tmp_path / "cache"
    m = mount(repo, cache_dir=cache, name="m1")
    os.mkdir(m / "a")
    os.mkdir(m / "a/a")
    write(m / "a/b", b"")
    kill_daemon(m.path)
    m2 = mount(repo, cache_dir=cache, name="m2")
    assert sorted(os.listdir(m2 / "a")) == ["a", "b"], "a directory made with mkdir stays until rmdir"
    assert (m2 / "a/a").is_dir()
