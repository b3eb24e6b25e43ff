"""What a read-only mount refuses, and with which errno (SEMANTICS.md)."""

import errno
import os
import subprocess

import pytest


@pytest.fixture
def ro(seeded, mount):
    return mount("alice/tiny-model@v1.0")


def expect(err, fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    assert e.value.errno == err, (fn, args, e.value)


def test_writes_are_erofs(ro):
    expect(errno.EROFS, open, ro / "config.json", "wb")
    expect(errno.EROFS, open, ro / "config.json", "ab")
    expect(errno.EROFS, open, ro / "new.txt", "wb")
    expect(errno.EROFS, os.mkdir, ro / "d")
    expect(errno.EROFS, os.unlink, ro / "config.json")
    expect(errno.EROFS, os.rmdir, ro / "nested")
    expect(errno.EROFS, os.rename, ro / "config.json", ro / "c2.json")
    expect(errno.EROFS, os.symlink, "config.json", ro / "link")
    expect(errno.EROFS, os.link, ro / "config.json", ro / "hard")
    expect(errno.EROFS, os.chmod, ro / "config.json", 0o600)
    expect(errno.EROFS, os.truncate, ro / "config.json", 0)
    expect(errno.EROFS, os.utime, ro / "config.json", (0, 0))
    expect(errno.EROFS, os.setxattr, ro / "config.json", "user.x", b"1")


def test_lookups_and_reads(ro):
    expect(errno.ENOENT, os.stat, ro / "nope")
    expect(errno.ENOENT, os.stat, ro / "nested/nope/deeper")
    expect(errno.ENOTDIR, os.listdir, ro / "config.json")
    expect(errno.EISDIR, lambda p: open(p, "rb").read(), ro / "nested")
    expect(errno.EOPNOTSUPP, os.getxattr, ro / "config.json", "user.x")
    expect(errno.EOPNOTSUPP, os.listxattr, ro / "config.json")
    assert os.access(ro / "config.json", os.R_OK)
    assert not os.access(ro / "config.json", os.W_OK)
    st = os.statvfs(ro.path)
    assert st.f_namemax == 255
    assert subprocess.run(["test", "-r", str(ro / "config.json")]).returncode == 0
