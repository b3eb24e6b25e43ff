"""Writable mounts keep editor and OS junk local (never committed), and commit titles say what
happened (checked with the official client)."""

import os
import subprocess
import time

from conftest import HUBFS, wait_until
from writes_lib import commits, fresh_repo, fsync_write, hub_bytes, hub_files, synced, write

JUNK_WORDS = (".swp", "4913", "~", ".DS_Store")


def titles(api, repo):
    return [c.title for c in commits(api, repo)]


def vi_save(d, name, data):
    """What vim does on `:w` (backupcopy=no) and quit: swap file, write probe, backup by
    rename, new file, then the backup and swap file go away."""
    write(d / f".{name}.swp", b"vim swap " * 100)
    write(d / "4913", b"")
    os.unlink(d / "4913")
    os.rename(d / name, d / f"{name}~")
    write(d / name, data)
    os.unlink(d / f"{name}~")
    os.unlink(d / f".{name}.swp")


def test_vi_edit_commits_only_the_file(api, mount):
    repo = fresh_repo(api, {"config.json": b'{"a": 1}\n'})
    m = mount(repo)
    vi_save(m, "config.json", b'{"a": 2}\n')
    synced(m)
    assert set(hub_files(api, repo)) - {".gitattributes"} == {"config.json"}, hub_files(api, repo)
    assert hub_bytes(api, repo, "config.json") == b'{"a": 2}\n'
    t = titles(api, repo)
    assert t[0] == "Update config.json via hubfs", t
    assert not any(w in title for title in t for w in JUNK_WORDS), t


def test_junk_lives_locally_but_is_never_committed(api, mount):
    repo = fresh_repo(api, {"README.md": b"# r\n"})
    m = mount(repo)
    before = len(commits(api, repo))
    write(m / ".notes.md.swp", b"swap")
    write(m / ".DS_Store", b"finder")
    write(m / "notes.md~", b"backup")
    write(m / "notes.md", b"notes\n")
    synced(m)
    files = hub_files(api, repo)
    assert "notes.md" in files
    assert not any(f in files for f in (".notes.md.swp", ".DS_Store", "notes.md~")), files
    assert len(commits(api, repo)) == before + 1
    # Still there locally: listed, readable, writable, renamable, removable.
    listing = os.listdir(m.path)
    for f in (".notes.md.swp", ".DS_Store", "notes.md~"):
        assert f in listing, listing
    assert (m / ".DS_Store").read_bytes() == b"finder"
    with open(m / ".DS_Store", "ab") as f:
        f.write(b"+more")
    assert (m / ".DS_Store").read_bytes() == b"finder+more"
    os.rename(m / "notes.md~", m / "old.md~")
    assert (m / "old.md~").read_bytes() == b"backup"
    # sync does not wait for junk, and status does not count it as pending.
    synced(m, timeout=30)
    assert m.status()["writes"]["pending"] == 0
    # An atomic save: junk renamed onto a real name commits the real name.
    os.rename(m / "old.md~", m / "notes.md")
    synced(m)
    assert hub_bytes(api, repo, "notes.md") == b"backup"
    files = hub_files(api, repo)
    assert not any(f.endswith("~") for f in files), files
    os.unlink(m / ".DS_Store")
    os.unlink(m / ".notes.md.swp")
    synced(m)
    assert not os.path.exists(m / ".DS_Store")
    assert not any(w in title for title in titles(api, repo) for w in JUNK_WORDS)


def test_ignore_pattern_and_no_default_ignore(api, mount):
    repo = fresh_repo(api, {"README.md": b"# r\n"})
    m = mount(repo, args=["--ignore", "*.bak", "--ignore", "scratch?"])
    write(m / "a.bak", b"bak")
    write(m / "scratch1", b"s")
    write(m / "keep.txt", b"keep")
    write(m / "x~", b"default still applies")
    synced(m)
    files = hub_files(api, repo)
    assert "keep.txt" in files
    assert not {"a.bak", "scratch1", "x~"} & set(files), files

    repo2 = fresh_repo(api, {"README.md": b"# r\n"})
    m2 = mount(repo2, args=["--no-default-ignore"])
    write(m2 / "x~", b"wanted")
    synced(m2)
    assert hub_bytes(api, repo2, "x~") == b"wanted"


def test_titles_say_what_happened(api, mount):
    repo = fresh_repo(api, {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c", "d.txt": b"d"})
    m = mount(repo)
    write(m / "new.txt", b"new")
    synced(m)
    assert titles(api, repo)[0] == "Add new.txt via hubfs"
    write(m / "a.txt", b"a2")
    synced(m)
    assert titles(api, repo)[0] == "Update a.txt via hubfs"
    os.unlink(m / "b.txt")
    synced(m)
    assert titles(api, repo)[0] == "Delete b.txt via hubfs"
    os.rename(m / "c.txt", m / "c2.txt")
    synced(m)
    assert titles(api, repo)[0] == "Rename c.txt to c2.txt via hubfs"
    # Several at once; a file created and removed in between is neither committed nor named.
    for n in ("x1", "x2", "x3"):
        write(m / n, n.encode())
    write(m / "a.txt", b"a3")
    os.unlink(m / "d.txt")
    os.unlink(m / "new.txt")
    write(m / "tmp-gone", b"t")
    os.unlink(m / "tmp-gone")
    write(m / "tmp-moved", b"t")
    os.rename(m / "tmp-moved", m / "x3")
    synced(m)
    assert titles(api, repo)[0] == "Add 3 files, update 1, delete 2 via hubfs", titles(api, repo)
    files = hub_files(api, repo)
    assert "tmp-gone" not in files and "tmp-moved" not in files
    assert hub_bytes(api, repo, "x3") == b"t"
    assert not any("tmp-" in t for t in titles(api, repo))


def test_junk_fsync_unmount_and_remount(api, mount, tmp_path):
    repo = fresh_repo(api, {"README.md": b"# r\n"})
    cache = tmp_path / "junkcache"
    # A long quiet period: fsync of junk must not wait for a commit that never comes.
    m = mount(repo, cache_dir=cache, args=["--commit-delay", "60"], name="j1")
    t0 = time.monotonic()
    fsync_write(m / ".f.swp", b"swap that survives")
    # Waiting for the commit would take the 60 s quiet period: well under it, with room for a
    # loaded machine.
    assert time.monotonic() - t0 < 40
    r = subprocess.run([HUBFS, "unmount", str(m.path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    m2 = mount(repo, cache_dir=cache, name="j2")
    assert (m2 / ".f.swp").read_bytes() == b"swap that survives"
    synced(m2)
    assert ".f.swp" not in hub_files(api, repo)
    assert m2.status()["writes"]["pending"] == 0


def test_junk_does_not_stop_refresh_following_the_branch(api, mount):
    from huggingface_hub import CommitOperationAdd
    repo = fresh_repo(api, {"README.md": b"# r\n"})
    m = mount(repo, args=["--refresh", "1"])
    write(m / ".DS_Store", b"finder")
    synced(m)
    api.create_commit(repo, operations=[CommitOperationAdd("upstream.txt", b"up")],
                      commit_message="elsewhere")
    assert wait_until(lambda: (m / "upstream.txt").exists(), 60), "the view did not follow"
    assert (m / ".DS_Store").read_bytes() == b"finder"
    write(m / "mine.txt", b"mine")
    synced(m)
    assert set(hub_files(api, repo)) >= {"upstream.txt", "mine.txt", "README.md"}
    assert ".DS_Store" not in hub_files(api, repo)
