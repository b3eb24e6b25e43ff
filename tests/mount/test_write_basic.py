"""Writable branch mounts: new files, edits, deletes, directories and renames land on the Hub
as commits (checked with the official client)."""

import os
import shutil

import pytest

from seed import det_bytes
from writes_lib import commits, fresh_repo, fsync_write, hub_bytes, hub_files, synced, write

MIB = 1 << 20


def test_new_small_and_lfs_files_land(api, mount):
    repo = fresh_repo(api)
    m = mount(repo)
    small = b"hello hubfs\n"
    big = det_bytes(12 * MIB, 1)
    write(m / "hello.txt", small)
    os.makedirs(m / "weights")
    write(m / "weights/model.bin", big)
    # Read-your-writes before anything is committed.
    assert (m / "hello.txt").read_bytes() == small
    assert (m / "weights/model.bin").stat().st_size == len(big)
    synced(m)
    assert hub_bytes(api, repo, "hello.txt") == small
    assert hub_bytes(api, repo, "weights/model.bin") == big
    info = api.get_paths_info(repo, ["weights/model.bin"])[0]
    assert info.lfs is not None, "a 12 MiB file goes to LFS"
    st = m.status()
    assert st["writes"]["pending"] == 0
    assert st["writes"]["commit"]["commits"] >= 1
    # The view moved to the new commit: the files are now served from the Hub's tree.
    head = api.repo_info(repo).sha
    assert any(v["commit"] == head for v in st["views"])
    assert (m / "weights/model.bin").read_bytes() == big


def test_edit_append_truncate_and_rm(api, mount):
    repo = fresh_repo(api, {"a.txt": b"0123456789", "b.txt": b"bbbb", "c.txt": b"cccc", "gone.txt": b"x"})
    m = mount(repo)
    with open(m / "a.txt", "r+b") as f:
        f.seek(3)
        f.write(b"XY")
    with open(m / "b.txt", "ab") as f:
        f.write(b"++")
    os.truncate(m / "c.txt", 2)
    os.remove(m / "gone.txt")
    assert (m / "a.txt").read_bytes() == b"012XY56789"
    assert (m / "b.txt").read_bytes() == b"bbbb++"
    assert (m / "c.txt").read_bytes() == b"cc"
    assert not (m / "gone.txt").exists()
    synced(m)
    assert hub_bytes(api, repo, "a.txt") == b"012XY56789"
    assert hub_bytes(api, repo, "b.txt") == b"bbbb++"
    assert hub_bytes(api, repo, "c.txt") == b"cc"
    assert "gone.txt" not in hub_files(api, repo)
    assert len(commits(api, repo)) == 3, "create + seed + one batched commit"


def test_cp_r_of_200_files_makes_few_commits(api, mount, tmp_path):
    repo = fresh_repo(api)
    src = tmp_path / "src"
    for i in range(200):
        (src / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 7}" / f"f{i}.txt").write_bytes(f"file {i}\n".encode())
    m = mount(repo)
    before = len(commits(api, repo))
    shutil.copytree(src, m / "tree")
    synced(m)
    made = len(commits(api, repo)) - before
    assert 1 <= made <= 5, f"{made} commits for 200 files"
    files = [f for f in hub_files(api, repo) if f.startswith("tree/")]
    assert len(files) == 200
    assert hub_bytes(api, repo, "tree/d3/f3.txt") == b"file 3\n"


def test_mkdir_rmdir_and_empty_dirs(api, mount):
    repo = fresh_repo(api, {"keep.txt": b"k"})
    m = mount(repo)
    os.makedirs(m / "empty/sub")
    assert (m / "empty/sub").is_dir()
    assert sorted(os.listdir(m / "empty")) == ["sub"]
    os.rmdir(m / "empty/sub")
    with pytest.raises(OSError):
        os.rmdir(m / "keep.txt")
    os.mkdir(m / "full")
    write(m / "full/f.txt", b"f")
    with pytest.raises(OSError) as e:
        os.rmdir(m / "full")
    assert e.value.errno == 39  # ENOTEMPTY
    synced(m)
    assert "full/f.txt" in hub_files(api, repo)
    assert (m / "empty").is_dir(), "a local directory stays until rmdir"
    os.rmdir(m / "empty")
    assert not (m / "empty").exists()


def test_mv_file_and_directory_lfs_not_reuploaded(api, mount, emulator):
    big = det_bytes(11 * MIB, 2)
    repo = fresh_repo(api, {"w/big.bin": big, "w/small.txt": b"small", "top.txt": b"top"})
    m = mount(repo)
    up_before = emulator.stats()["lfs_bytes_uploaded"]
    os.rename(m / "top.txt", m / "renamed.txt")
    os.rename(m / "w", m / "moved")
    assert (m / "moved/big.bin").read_bytes() == big
    assert not (m / "w").exists()
    synced(m)
    files = hub_files(api, repo)
    assert "renamed.txt" in files and "top.txt" not in files
    assert "moved/big.bin" in files and "moved/small.txt" in files
    assert not any(f.startswith("w/") for f in files)
    assert hub_bytes(api, repo, "moved/big.bin") == big
    assert hub_bytes(api, repo, "renamed.txt") == b"top"
    assert emulator.stats()["lfs_bytes_uploaded"] == up_before, "an LFS rename uploads nothing"


def test_editor_save_patterns(api, mount):
    repo = fresh_repo(api, {"vim.txt": b"old vim\n", "code.txt": b"old code\n", "trunc.txt": b"old trunc\n"})
    m = mount(repo)
    # vim: write the new content to a swap/backup name, rename it over the original.
    write(m / ".vim.txt.swp", b"swap")
    write(m / "vim.txt~", b"new vim\n")
    os.rename(m / "vim.txt~", m / "vim.txt")
    os.remove(m / ".vim.txt.swp")
    # VS Code: write a temp file, rename over.
    write(m / "code.txt.tmp", b"new code\n")
    os.replace(m / "code.txt.tmp", m / "code.txt")
    # truncate + write in place.
    with open(m / "trunc.txt", "r+b") as f:
        f.truncate(0)
        f.write(b"new trunc\n")
    # unlink + create
    os.remove(m / "vim.txt")
    write(m / "vim.txt", b"newest vim\n")
    synced(m)
    assert hub_bytes(api, repo, "vim.txt") == b"newest vim\n"
    assert hub_bytes(api, repo, "code.txt") == b"new code\n"
    assert hub_bytes(api, repo, "trunc.txt") == b"new trunc\n"
    files = hub_files(api, repo)
    assert not any(f.endswith((".swp", "~", ".tmp")) for f in files), files


def test_fsync_means_on_the_hub(api, mount):
    repo = fresh_repo(api)
    # A long quiet period: only fsync can make it land quickly.
    m = mount(repo, args=["--commit-delay", "60"])
    fsync_write(m / "durable.txt", b"durable\n")
    assert hub_bytes(api, repo, "durable.txt") == b"durable\n"


def test_commit_message_option(api, mount):
    repo = fresh_repo(api)
    m = mount(repo, args=["--commit-message", "robot update"])
    write(m / "x.txt", b"x")
    synced(m)
    assert commits(api, repo)[0].title == "robot update"
    m2 = mount(fresh_repo(api))
    write(m2 / "cfg.json", b"{}")
    synced(m2)


def test_unsupported_operations(api, mount):
    repo = fresh_repo(api, {"f.txt": b"f"})
    m = mount(repo)
    with pytest.raises(PermissionError):
        os.symlink("f.txt", m / "link")
    with pytest.raises(PermissionError):
        os.link(m / "f.txt", m / "hard")
    with pytest.raises(PermissionError):
        os.chmod(m / "f.txt", 0o600)
    os.chmod(m / "f.txt", 0o644)  # no-op change: accepted (cp -p)
    os.utime(m / "f.txt", (1, 1))  # accepted, ignored
    assert oct((m / "f.txt").stat().st_mode & 0o777) == "0o644"
    assert oct((m / "").stat().st_mode & 0o777) == "0o755"
