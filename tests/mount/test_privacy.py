"""What hubfs leaves on local disk and in its process is private to its user: cache, staging,
journal and log are 0700/0600 whatever the umask (another local user reads nothing), an old
loose cache is tightened, someone else's cache is refused, the token is not in the daemon's
environment, and a token file others can read draws a warning."""

import json
import os
import shutil
import stat
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import HUBFS, WRITE_TOKEN, hubfs_env, is_mounted, wait_until
from writes_lib import fresh_repo, write

NOBODY = 65534


@pytest.fixture
def shared_tmp():
    """A directory under /tmp that every user may enter (like /tmp itself): only the modes of
    what hubfs creates inside can keep other users out."""
    d = Path(tempfile.mkdtemp(prefix="hubfs-priv-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def mount_loose(source, mp, emulator, cache, token=WRITE_TOKEN, args=()):
    """`hubfs mount` under umask 0, the loosest there is: modes must be set explicitly."""
    mp.mkdir(parents=True, exist_ok=True)
    cmd = [HUBFS, "mount", source, str(mp), "--endpoint", emulator.url, "--cache-dir", str(cache), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=hubfs_env(token), timeout=60,
                          preexec_fn=lambda: os.umask(0))


def unmount(mp):
    if is_mounted(mp):
        r = subprocess.run([HUBFS, "unmount", str(mp)], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(mp)], capture_output=True)
    assert wait_until(lambda: not is_mounted(mp), 10)


def daemon_pid(cache: Path) -> int:
    return int((cache / "lock").read_text().split()[0])


def loose_entries(root: Path):
    """Every entry under root (root included) that group or others may access."""
    bad = []
    for dirpath, dirs, files in os.walk(root):
        for name in [""] + dirs + files:
            p = Path(dirpath) / name
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = stat.S_IMODE(st.st_mode)
            want_dir = stat.S_ISDIR(st.st_mode)
            if (want_dir and mode != 0o700) or (not want_dir and mode & 0o077):
                bad.append((str(p), oct(mode)))
    return bad


def as_nobody_grep(marker: str, root: Path):
    return subprocess.run(["runuser", "-u", "nobody", "--", "grep", "-r", marker, str(root)],
                          capture_output=True, text=True, timeout=60)


def test_cache_staging_and_log_are_private_to_the_user(api, emulator, shared_tmp, tmp_path):
    marker = f"MARKER-{uuid.uuid4().hex}"
    repo = fresh_repo(api, {"secret.txt": f"{marker} private weights\n".encode() * 100}, private=True)
    cache, mp = shared_tmp / "cache", tmp_path / "m"
    r = mount_loose(repo, mp, emulator, cache, args=["--commit-delay", "3600"])
    assert r.returncode == 0, r.stderr
    try:
        assert marker in (mp / "secret.txt").read_text()
        # A staged change and its journal (kept staged by the long commit delay).
        write(mp / "draft.txt", f"{marker} staged draft\n".encode())
        # A version is queued at the kernel's RELEASE of the last writable handle, which can come a
        # moment after close(2) returns: wait for it rather than race it.
        def pending():
            st = subprocess.run([HUBFS, "status", "--json", str(mp)], capture_output=True, text=True, timeout=20)
            return json.loads(st.stdout)["writes"]["pending"]

        assert wait_until(lambda: pending() == 1, 30), pending()
        # The marker is on disk (blocks, staging file) ...
        mine = subprocess.run(["grep", "-rl", marker, str(cache)], capture_output=True, text=True)
        found = mine.stdout.split()
        assert any("/blocks/" in f for f in found) and any("/staging/" in f for f in found), found
        # ... but another local user cannot read any of it.
        theirs = as_nobody_grep(marker, shared_tmp)
        assert marker not in theirs.stdout
        assert theirs.returncode == 2 and "Permission denied" in theirs.stderr, (theirs.returncode, theirs.stderr)
        assert loose_entries(cache) == []
        assert stat.S_IMODE(os.stat(cache / "hubfs.log").st_mode) == 0o600
        # The control socket's directory too.
        # Derived from the uid alone (never XDG_RUNTIME_DIR), so any login finds it.
        sock_dir = Path("/run/hubfs") if os.geteuid() == 0 else Path(f"/tmp/hubfs-{os.geteuid()}")
        assert stat.S_IMODE(os.stat(sock_dir).st_mode) == 0o700
    finally:
        unmount(mp)


def test_an_old_loose_cache_is_tightened_at_the_next_mount(api, emulator, shared_tmp, tmp_path):
    marker = f"MARKER-{uuid.uuid4().hex}"
    repo = fresh_repo(api, {"secret.txt": f"{marker}\n".encode() * 100}, private=True)
    cache, mp = shared_tmp / "cache", tmp_path / "m"
    r = mount_loose(repo, mp, emulator, cache)
    assert r.returncode == 0, r.stderr
    assert marker in (mp / "secret.txt").read_text()
    unmount(mp)
    # What an older hubfs (or a loose umask) left: 0755 directories, 0644 files.
    for dirpath, dirs, files in os.walk(cache):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(Path(dirpath) / f, 0o644)
    assert marker in as_nobody_grep(marker, shared_tmp).stdout, "the loose cache leaks (test setup)"

    r = mount_loose(repo, mp, emulator, cache)
    assert r.returncode == 0, r.stderr
    try:
        assert loose_entries(cache) == []
        assert marker not in as_nobody_grep(marker, shared_tmp).stdout
        log = (cache / "hubfs.log").read_text()
        assert "was mode 0644: made it 0600" in log, log[-2000:]
        assert "was accessible to other users (mode 0755): made it private" in log, log[-2000:]
    finally:
        unmount(mp)


def test_a_cache_dir_owned_by_another_user_is_refused(seeded, emulator, shared_tmp, tmp_path):
    cache = shared_tmp / "theirs"
    cache.mkdir()
    os.chown(cache, NOBODY, NOBODY)
    mp = tmp_path / "m"
    r = mount_loose("alice/tiny-model", mp, emulator, cache)
    mounted = is_mounted(mp)
    unmount(mp)
    assert r.returncode != 0 and not mounted
    msg = r.stderr.strip()
    assert len(msg.splitlines()) == 1, msg
    assert f"cache dir {cache} belongs to uid {NOBODY}" in msg, msg
    assert os.listdir(cache) == [], "nothing written into it"


def test_the_token_is_not_in_the_daemons_environment(api, emulator, tmp_path):
    repo = fresh_repo(api, {"secret.txt": b"only with the token\n"}, private=True)
    cache, mp = tmp_path / "cache", tmp_path / "m"
    r = mount_loose(repo, mp, emulator, cache)
    assert r.returncode == 0, r.stderr
    try:
        # The token was read (a private repo) ...
        assert (mp / "secret.txt").read_bytes() == b"only with the token\n"
        pid = daemon_pid(cache)
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"HF_HOME=" in environ, "the rest of the environment is kept"
        # ... and is neither in its environment block nor its command line.
        assert WRITE_TOKEN.encode() not in environ
        assert WRITE_TOKEN.encode() not in cmdline
        # Writes (which use the token too) still work.
        write(mp / "new.txt", b"x")
        s = subprocess.run([HUBFS, "sync", str(mp)], capture_output=True, text=True, timeout=120)
        assert s.returncode == 0, s.stderr
    finally:
        unmount(mp)


def test_a_token_file_others_can_read_draws_a_warning(seeded, emulator, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(WRITE_TOKEN + "\n")
    os.chmod(token_file, 0o644)
    for mode, warned in [(0o644, True), (0o600, False)]:
        os.chmod(token_file, mode)
        cache, mp = tmp_path / f"cache{mode:o}", tmp_path / f"m{mode:o}"
        # HF_TOKEN empty: only the file can authenticate, which the private repo proves.
        r = mount_loose("alice/private-model", mp, emulator, cache, token="", args=["--token-file", str(token_file)])
        assert r.returncode == 0, r.stderr
        try:
            assert (mp / "secret.txt").read_bytes() == b"secret weights\n"
            hint = f"chmod 600 {token_file}"
            log = (cache / "hubfs.log").read_text()
            if warned:
                assert f"token file {token_file} is accessible to other users (mode 0644)" in r.stderr, r.stderr
                assert hint in r.stderr and hint in log
            else:
                assert "token file" not in r.stderr and hint not in log, r.stderr
        finally:
            unmount(mp)
