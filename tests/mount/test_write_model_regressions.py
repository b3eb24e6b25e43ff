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


def listing(m):
    """{dir: sorted entries} of the whole mount (the model rig walks it after every step)."""
    out = {}
    for d, dirs, files in os.walk(m.path):
        rel = os.path.relpath(d, m.path)
        if rel != ".":
            out[rel] = sorted(dirs + files)
    return out


def test_a_directory_made_where_a_deleted_file_was_survives_the_deletion_landing(api, mount):
    # Found as: mkdir a, write a/a, sync, unlink a/a, mkdir a/a, sync -> a/a was gone.
    repo = fresh_repo(api)
    m = mount(repo, args=["--commit-delay", "0.2"])
    os.mkdir(m / "a")
    write(m / "a/a", b"")
    synced(m)
    listing(m)
    os.unlink(m / "a/a")
    listing(m)
    os.mkdir(m / "a/a")
    listing(m)
    synced(m)
    # Once the deletion of a/a lands, `a` has nothing left on the Hub: it must stay (a local
    # directory holding the local a/a), listable, not EIO.
    assert os.listdir(m / "a") == ["a"], "a directory made with mkdir stays until rmdir"
    assert (m / "a/a").is_dir()
    assert listing(m) == {"a": ["a"], "a/a": []}
    assert "a/a" not in hub_files(api, repo)


def test_renaming_a_directory_that_replaced_a_deleted_file_does_not_resurrect_the_file(api, mount):
    # Found as: write b, sync, unlink b, mkdir b, rename b -> a: the mount showed file b again.
    repo = fresh_repo(api)
    m = mount(repo)
    write(m / "b", b"")
    synced(m)
    os.unlink(m / "b")
    os.mkdir(m / "b")
    os.rename(m / "b", m / "a")
    assert sorted(os.listdir(m.path)) == [".gitattributes", "a"]
    assert (m / "a").is_dir()
    synced(m)
    assert sorted(os.listdir(m.path)) == [".gitattributes", "a"]
    assert "b" not in hub_files(api, repo)


def test_ftruncate_of_an_unlinked_open_file(api, mount):
    # Found as: open a O_RDWR|O_CREAT, unlink a, ftruncate(fd, 0) -> ENOENT (defect 8 of the
    # write path: an open handle keeps working on its orphaned file, which never lands).
    repo = fresh_repo(api)
    m = mount(repo)
    fd = os.open(m / "a", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.unlink(m / "a")
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"orphan", 0)
        assert os.fstat(fd).st_size == 6
        assert os.pread(fd, 10, 0) == b"orphan"
    finally:
        os.close(fd)
    synced(m)
    assert "a" not in hub_files(api, repo)
    assert not (m / "a").exists()


def test_rmdir_of_a_directory_that_replaced_a_deleted_file_does_not_resurrect_the_file(api, mount):
    # Found as: write a, sync, unlink a, mkdir a, rmdir a -> the mount showed file a again.
    repo = fresh_repo(api)
    m = mount(repo)
    write(m / "a", b"landed")
    synced(m)
    os.unlink(m / "a")
    os.mkdir(m / "a")
    os.rmdir(m / "a")
    assert not (m / "a").exists()
    synced(m)
    assert not (m / "a").exists()
    assert "a" not in hub_files(api, repo)


def test_a_handle_of_an_unlinked_file_does_not_see_the_new_file_of_that_name(api, mount):
    # Found as: open a (twice), unlink a, create a anew, truncate the new a to 2 bytes: the
    # handles of the unlinked a showed size 2 (a local file system: still 0, its own inode).
    repo = fresh_repo(api)
    m = mount(repo)
    fd = os.open(m / "a", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.unlink(m / "a")
        write(m / "a", b"")
        os.truncate(m / "a", 2)
        assert os.fstat(fd).st_size == 0
        assert os.pread(fd, 10, 0) == b""
    finally:
        os.close(fd)
    assert (m / "a").read_bytes() == b"\0\0"
    synced(m)
    assert (m / "a").read_bytes() == b"\0\0"


def test_a_mkdir_d_directory_survives_kill_9_after_its_only_file_is_unlinked(api, mount, tmp_path):
    # Found as: mkdir a, write a/a, unlink a/a, kill -9 + remount -> `a` was gone.
    repo = fresh_repo(api)
    cache = tmp_path / "cache"
    m = mount(repo, cache_dir=cache, name="m1")
    os.mkdir(m / "a")
    write(m / "a/a", b"")
    os.unlink(m / "a/a")
    kill_daemon(m.path)
    m2 = mount(repo, cache_dir=cache, name="m2")
    assert (m2 / "a").is_dir(), "a directory made with mkdir stays until rmdir"
    assert os.listdir(m2 / "a") == []


def test_a_file_replacing_a_directory_moved_away_lands(api, mount):
    # Found as: mkdir a, write a/a, (kill/remount), mv a b/a, write a, sync -> the Hub refused
    # the commit ("cannot write a: it is a directory"): the file `a` was sent while `a/a` was
    # still on the Hub.
    repo = fresh_repo(api)
    m = mount(repo)
    os.mkdir(m / "a")
    write(m / "a/a", b"inside")
    os.mkdir(m / "b")
    synced(m)
    os.rename(m / "a", m / "b/a")
    write(m / "a", b"file now")
    synced(m)
    files = hub_files(api, repo)
    assert "a" in files and "b/a/a" in files and "a/a" not in files, files
