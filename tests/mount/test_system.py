"""hubfs where users put a filesystem: /etc/fstab and mount(8) (the `mount.fuse.hubfs` helper),
systemd (`Type=notify` readiness), non-root users (fusermount3, with errors naming cause and
fix), `hubfs status` listing every mount from any login, ownership and mode options, and the
generated completions and man page. Everything through the real tools (mount, umount, findmnt,
runuser, useradd)."""

import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import HUBFS, WRITE_TOKEN, hubfs_env, is_mounted, run_mount, wait_until

HELPER = Path("/sbin/mount.fuse.hubfs")
REPO = "alice/tiny-model"


def findmnt(mp):
    """findmnt's view of the hubfs mount at `mp` (type fuse.hubfs), or None."""
    r = subprocess.run(["findmnt", "-J", "-t", "fuse.hubfs", "-M", str(Path(mp).resolve())],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)["filesystems"][0]


def daemon_pid(mp):
    st = subprocess.run([HUBFS, "status", "--json", str(mp)], capture_output=True, text=True, timeout=20)
    assert st.returncode == 0, st.stderr
    return json.loads(st.stdout)["daemon"]["pid"]


def force_unmount(mp):
    if is_mounted(mp):
        subprocess.run(["umount", "-l", str(mp)], capture_output=True)


@pytest.fixture
def mount_helper():
    """/sbin/mount.fuse.hubfs -> this build's hubfs for the test (mount(8) looks for helpers in
    /sbin only), put back as it was afterwards."""
    previous = os.readlink(HELPER) if HELPER.is_symlink() else None
    assert previous is not None or not HELPER.exists(), f"{HELPER} is a real file: not touching it"
    if previous is not None:
        HELPER.unlink()
    HELPER.symlink_to(Path(HUBFS).resolve())
    try:
        yield HELPER
    finally:
        HELPER.unlink()
        if previous is not None:
            HELPER.symlink_to(previous)


def test_fstab_line_mounts_with_mount_a_and_unmounts_with_umount(seeded, emulator, mount_helper, tmp_path):
    mp, cache = tmp_path / "fstab-mnt", tmp_path / "cache"
    mp.mkdir()
    fstab = tmp_path / "fstab"
    # Options as users write them: generic ones mount(8) and systemd own are ignored.
    opts = (f"ro,_netdev,nofail,x-systemd.automount,x-systemd.mount-timeout=30,noatime,user,"
            f"cache_dir={cache},endpoint={emulator.url},dir_mode=0750,file_mode=0440")
    fstab.write_text(f"# a comment\n{REPO} {mp} fuse.hubfs {opts} 0 0\n")
    try:
        r = subprocess.run(["mount", "-T", str(fstab), "-a"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        fs = findmnt(mp)
        assert fs is not None, "findmnt -t fuse.hubfs does not find the mount"
        assert fs["fstype"] == "fuse.hubfs" and fs["source"] == REPO, fs
        assert "ro" in fs["options"].split(","), fs
        assert (mp / "later.txt").read_bytes() == b"second commit\n"
        assert stat.S_IMODE(os.stat(mp).st_mode) == 0o750
        assert stat.S_IMODE(os.stat(mp / "later.txt").st_mode) == 0o440
        st = subprocess.run([HUBFS, "status", "--json", str(mp)], capture_output=True, text=True, timeout=20)
        assert json.loads(st.stdout)["daemon"]["cache_dir"] == str(cache), st.stdout
        pid = daemon_pid(mp)
        # mount -a again: already mounted, nothing to do (the source matches the fstab line).
        again = subprocess.run(["mount", "-T", str(fstab), "-a"], capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        n = subprocess.run(["findmnt", "-n", "-t", "fuse.hubfs", "-M", str(mp)], capture_output=True, text=True)
        assert len(n.stdout.strip().splitlines()) == 1, n.stdout
        u = subprocess.run(["umount", str(mp)], capture_output=True, text=True, timeout=30)
        assert u.returncode == 0, u.stderr
        assert findmnt(mp) is None
        assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 30), "daemon still running"
        # mount MOUNTPOINT alone finds the line too.
        r = subprocess.run(["mount", "-T", str(fstab), str(mp)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert findmnt(mp) is not None
    finally:
        force_unmount(mp)


def test_mount_t_fuse_hubfs_on_the_command_line(seeded, emulator, mount_helper, tmp_path):
    mp = tmp_path / "m"
    mp.mkdir()
    r = subprocess.run(["mount", "-t", "fuse.hubfs", f"{REPO}@v1.0", str(mp), "-o",
                        f"ro,cache_dir={tmp_path / 'c'},endpoint={emulator.url}"],
                       capture_output=True, text=True, timeout=60)
    try:
        assert r.returncode == 0, r.stderr
        assert findmnt(mp)["source"] == f"{REPO}@v1.0"
        assert not (mp / "later.txt").exists()  # v1.0 predates it
    finally:
        subprocess.run(["umount", str(mp)], capture_output=True)
        force_unmount(mp)


def test_mount_fuse_of_the_fuse3_package_runs_hubfs_from_path(seeded, emulator, tmp_path):
    """Without /sbin/mount.fuse.hubfs, mount(8) runs /sbin/mount.fuse (fuse3), which runs
    `hubfs SOURCE DIR -o OPTIONS` through the shell: hubfs takes that form too."""
    if not Path("/sbin/mount.fuse3").exists():
        pytest.fail("/sbin/mount.fuse3 missing: install the Debian package fuse3 (scripts/lib/setup.sh)")
    bindir, mp = tmp_path / "bin", tmp_path / "m"
    bindir.mkdir()
    mp.mkdir()
    (bindir / "hubfs").symlink_to(Path(HUBFS).resolve())
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    r = subprocess.run(["/sbin/mount.fuse3", REPO, str(mp), "-t", "fuse.hubfs", "-o",
                        f"ro,nodev,cache_dir={tmp_path / 'c'},endpoint={emulator.url}"],
                       capture_output=True, text=True, timeout=60, env=env)
    try:
        assert r.returncode == 0, r.stderr
        assert findmnt(mp)["fstype"] == "fuse.hubfs"
        assert (mp / "later.txt").read_bytes() == b"second commit\n"
    finally:
        subprocess.run(["umount", str(mp)], capture_output=True)
        force_unmount(mp)


def test_helper_refuses_unknown_options_by_name_and_fake_mode_does_nothing(tmp_path):
    helper = tmp_path / "mount.fuse.hubfs"
    helper.symlink_to(Path(HUBFS).resolve())
    mp = tmp_path / "m"
    mp.mkdir()
    for opts, needle in [("ro,cachedir=/x", '"cachedir"'), ("cache_dir", "needs a value"),
                         ("allow_other=yes", "takes no value"), ("foreground", "not available")]:
        r = subprocess.run([str(helper), REPO, str(mp), "-o", opts], capture_output=True, text=True, timeout=20)
        assert r.returncode != 0 and needle in r.stderr, (opts, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # mount -f (fake): succeeds without mounting.
    r = subprocess.run([str(helper), REPO, str(mp), "-f", "-o", "ro"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert not is_mounted(mp)


def test_foreground_mount_tells_systemd_it_is_ready(seeded, emulator, tmp_path):
    """`hubfs mount -f` under systemd Type=notify: READY=1 once the mount is live, through a
    datagram to $NOTIFY_SOCKET; STOPPING=1 when it is unmounted."""
    mp, sock_path = tmp_path / "m", tmp_path / "notify.sock"
    mp.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(30)
    env = hubfs_env(WRITE_TOKEN, NOTIFY_SOCKET=str(sock_path))
    proc = subprocess.Popen([HUBFS, "mount", REPO, str(mp), "-f", "--endpoint", emulator.url,
                             "--cache-dir", str(tmp_path / "c")],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "log", "wb"), env=env)
    try:
        msg = sock.recv(4096).decode()
        assert msg == "READY=1", msg
        # Live when systemd hears it: a unit ordered after this one may read at once.
        assert findmnt(mp) is not None
        assert (mp / "later.txt").read_bytes() == b"second commit\n"
        subprocess.run(["umount", str(mp)], check=True)
        assert sock.recv(4096).decode() == "STOPPING=1"
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        force_unmount(mp)
        sock.close()


def test_example_unit_file_is_type_notify_with_foreground():
    unit = (Path(__file__).resolve().parents[2] / "examples" / "hubfs@.service").read_text()
    assert "Type=notify" in unit
    exec_start = next(l for l in unit.splitlines() if l.startswith("ExecStart="))
    assert " mount " in exec_start and " -f" in exec_start, exec_start


# ---------------------------------------------------------------- non-root users


@pytest.fixture
def user():
    """A fresh local user, removed afterwards, and a directory of theirs under /tmp."""
    name = f"hubfs{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True)
    home = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    pw = pwd.getpwnam(name)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    try:
        yield name, pw.pw_uid, home
    finally:
        for line in open("/proc/self/mountinfo"):
            mp = line.split(" ")[4]
            if mp.startswith(str(home)):
                subprocess.run(["umount", "-l", mp], capture_output=True)
        # Whatever the test left running as that user (its daemons), by pid.
        pids = subprocess.run(["pgrep", "-u", name], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: subprocess.run(["pgrep", "-u", name], capture_output=True).returncode != 0, 10)
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(f"/tmp/hubfs-{pw.pw_uid}", ignore_errors=True)  # its control socket dir
        shutil.rmtree(home, ignore_errors=True)
        assert subprocess.run(["id", name], capture_output=True).returncode != 0, "user left behind"


@pytest.fixture
def dev_fuse_mode():
    """Sets /dev/fuse's mode for the test and puts the original back."""
    original = stat.S_IMODE(os.stat("/dev/fuse").st_mode)

    def set_mode(mode):
        os.chmod("/dev/fuse", mode)

    yield set_mode
    os.chmod("/dev/fuse", original)


def as_user(name, *cmd, env_extra=None, timeout=60):
    env = hubfs_env(None, **(env_extra or {}))
    env.pop("XDG_RUNTIME_DIR", None)
    return subprocess.run(["runuser", "-u", name, "--", *cmd], capture_output=True, text=True,
                          env=env, timeout=timeout)


def user_mount(name, home, emulator, *extra, mp_name="m"):
    mp = home / mp_name
    if not mp.exists():
        as_user(name, "mkdir", "-p", str(mp))
    return mp, as_user(name, HUBFS, "mount", REPO, str(mp), "--endpoint", emulator.url,
                       "--cache-dir", str(home / "cache"), *extra)


def test_non_root_user_mounts_and_unmounts_through_fusermount3(seeded, emulator, user, dev_fuse_mode):
    name, uid, home = user
    dev_fuse_mode(0o666)
    mp, r = user_mount(name, home, emulator)
    try:
        assert r.returncode == 0, r.stderr
        fs = findmnt(mp)
        assert fs["fstype"] == "fuse.hubfs", fs
        assert f"user_id={uid}" in fs["options"], fs
        cat = as_user(name, "cat", str(mp / "later.txt"))
        assert cat.stdout == "second commit\n", cat.stderr
        ls = as_user(name, "stat", "-c", "%u %a", str(mp), str(mp / "later.txt"))
        assert ls.stdout.split("\n")[:2] == [f"{uid} 755", f"{uid} 444"], ls.stdout
        # Their status from another login (no XDG_RUNTIME_DIR, another one) and root's.
        for env in ({}, {"XDG_RUNTIME_DIR": str(home)}):
            st = as_user(name, HUBFS, "status", str(mp), env_extra=env)
            assert st.returncode == 0 and REPO in st.stdout, st.stderr
            sy = as_user(name, HUBFS, "sync", str(mp), env_extra=env)
            assert sy.returncode == 0, sy.stderr
        root_st = subprocess.run([HUBFS, "status", str(mp)], capture_output=True, text=True, timeout=20)
        assert root_st.returncode == 0 and REPO in root_st.stdout, root_st.stderr
        listing = as_user(name, HUBFS, "status")
        assert str(mp) in listing.stdout, listing.stdout
        u = as_user(name, HUBFS, "unmount", str(mp))
        assert u.returncode == 0, u.stderr
        assert findmnt(mp) is None
    finally:
        force_unmount(mp)


def test_user_fstab_line_is_mounted_and_unmounted_by_that_user(seeded, emulator, user, dev_fuse_mode,
                                                               mount_helper):
    """An /etc/fstab line with `user`: mount(8) runs the helper as the user (mount -T is root's
    only, so the line goes into /etc/fstab, removed afterwards)."""
    name, uid, home = user
    dev_fuse_mode(0o666)
    mp = home / "fstab-m"
    as_user(name, "mkdir", "-p", str(mp))
    line = (f"{REPO} {mp} fuse.hubfs noauto,user,ro,cache_dir={home / 'cache'},"
            f"endpoint={emulator.url} 0 0\n")
    fstab = Path("/etc/fstab")
    with fstab.open("a") as f:
        f.write(line)
    try:
        r = as_user(name, "mount", str(mp))
        assert r.returncode == 0, r.stderr
        fs = findmnt(mp)
        assert fs["fstype"] == "fuse.hubfs" and f"user_id={uid}" in fs["options"], fs
        assert as_user(name, "cat", str(mp / "later.txt")).stdout == "second commit\n"
        u = as_user(name, "umount", str(mp))
        assert u.returncode == 0, u.stderr
        assert findmnt(mp) is None
    finally:
        fstab.write_text("".join(l for l in fstab.read_text().splitlines(keepends=True) if l != line))
        force_unmount(mp)
    assert line not in fstab.read_text()


def test_non_root_user_plain_umount_goes_through_fusermount3(seeded, emulator, user, dev_fuse_mode):
    name, uid, home = user
    dev_fuse_mode(0o666)
    mp, r = user_mount(name, home, emulator)
    try:
        assert r.returncode == 0, r.stderr
        u = as_user(name, "fusermount3", "-u", str(mp))
        assert u.returncode == 0, u.stderr
        assert findmnt(mp) is None
    finally:
        force_unmount(mp)


def test_dev_fuse_not_accessible_is_named_with_the_fix(seeded, emulator, user, dev_fuse_mode):
    name, uid, home = user
    dev_fuse_mode(0o600)
    mp, r = user_mount(name, home, emulator)
    assert r.returncode == 1
    msg = r.stderr.strip()
    assert len(msg.splitlines()) == 1, msg
    assert "/dev/fuse" in msg and "Permission denied" in msg and "chmod 0666 /dev/fuse" in msg, msg
    assert not is_mounted(mp)


def test_missing_fusermount3_names_the_debian_package(seeded, emulator, user, dev_fuse_mode):
    name, uid, home = user
    dev_fuse_mode(0o666)
    mp = home / "m"
    as_user(name, "mkdir", "-p", str(mp))
    # A private mount namespace where fusermount3 (and fusermount) is not a file.
    hide = " && ".join(f"mount --bind /dev/null {p}" for p in ("/usr/bin/fusermount3", "/usr/bin/fusermount")
                       if os.path.exists(p))
    env = hubfs_env(None)
    env.pop("XDG_RUNTIME_DIR", None)
    cmd = (f"{hide} && exec runuser -u {name} -- {HUBFS} mount {REPO} {mp} --endpoint {emulator.url} "
           f"--cache-dir {home / 'cache'}")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", cmd],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1, r.stderr
    msg = r.stderr.strip()
    assert "fusermount3 not found" in msg and "fuse3" in msg and "apt-get install fuse3" in msg, msg
    assert len(msg.splitlines()) == 1, msg


def test_allow_other_without_user_allow_other_says_so(seeded, emulator, user, dev_fuse_mode):
    name, uid, home = user
    dev_fuse_mode(0o666)
    conf = Path("/etc/fuse.conf").read_text() if Path("/etc/fuse.conf").exists() else ""
    if any(l.split("#")[0].strip() == "user_allow_other" for l in conf.splitlines()):
        pytest.fail("/etc/fuse.conf enables user_allow_other on this machine: the case cannot be shown")
    mp, r = user_mount(name, home, emulator, "--allow-other")
    assert r.returncode == 1
    msg = r.stderr.strip()
    assert "user_allow_other" in msg and "/etc/fuse.conf" in msg, msg
    assert len(msg.splitlines()) == 1, msg
    assert not is_mounted(mp)


# ---------------------------------------------------------------- status, pipes


def test_status_without_mountpoint_lists_every_mount(seeded, emulator, mount, tmp_path):
    a = mount(REPO, args=["--read-only"])
    b = mount(f"{REPO}@v1.0")
    st = subprocess.run([HUBFS, "status"], capture_output=True, text=True, timeout=30)
    assert st.returncode == 0, st.stderr
    for m, source, mode in ((a, REPO, "read-only"), (b, f"{REPO}@v1.0", "read-only")):
        block = st.stdout.split(f"{m.path}\n", 1)[1].split("\n\n", 1)[0]
        assert f"source:    {source}" in block, block
        assert f"mode:      {mode}" in block, block
        assert f"cache dir: {m.cache_dir}" in block, block
        assert f"log:       {m.log}" in block, block
        pid = int(block.split("pid:")[1].split()[0])
        assert os.path.exists(f"/proc/{pid}"), pid
    js = json.loads(subprocess.run([HUBFS, "status", "--json"], capture_output=True, text=True, timeout=30).stdout)
    mine = {e["mountpoint"]: e for e in js}
    assert mine[str(a.path)]["status"]["daemon"]["source"] == REPO


def test_status_and_sync_work_from_another_environment(seeded, emulator, mount, tmp_path):
    """sudo, cron or another login: another XDG_RUNTIME_DIR, or none."""
    m = mount(REPO)
    for env in ({"XDG_RUNTIME_DIR": str(tmp_path)}, {}):
        clean = {"PATH": os.environ["PATH"], **env}
        st = subprocess.run([HUBFS, "status", str(m.path)], capture_output=True, text=True, timeout=20, env=clean)
        assert st.returncode == 0 and REPO in st.stdout, st.stderr
        sy = subprocess.run([HUBFS, "sync", str(m.path)], capture_output=True, text=True, timeout=60, env=clean)
        assert sy.returncode == 0, sy.stderr


def test_status_into_a_closed_pipe_does_not_panic(seeded, mount):
    m = mount(REPO)
    for args in (["status", str(m.path)], ["status", "--json", str(m.path)], ["status"], ["--help"],
                 ["completions", "bash"], ["man"]):
        r_fd, w_fd = os.pipe()
        os.close(r_fd)  # the reader is gone before anything is written: `| true`
        p = subprocess.run([HUBFS, *args], stdout=w_fd, stderr=subprocess.PIPE, text=True, timeout=20)
        os.close(w_fd)
        assert "panicked" not in p.stderr, (args, p.stderr)
        assert p.returncode in (0, -signal.SIGPIPE), (args, p.returncode, p.stderr)


# ---------------------------------------------------------------- ownership, modes, mountpoints


def test_copies_of_a_read_only_mount_can_be_removed_by_their_owner(seeded, emulator, user, tmp_path):
    name, uid, home = user
    # Root mounts where the user can reach it, for everyone, owned by the user.
    mp = home / "ro"
    mp.mkdir()
    r = run_mount(REPO, mp, emulator, cache_dir=tmp_path / "c",
                  args=["--read-only", "--allow-other", "--uid", str(uid)])
    try:
        assert r.returncode == 0, r.stderr
        assert stat.S_IMODE(os.stat(mp).st_mode) == 0o755
        copy = home / "copy"
        cp = as_user(name, "cp", "-r", str(mp), str(copy))
        assert cp.returncode == 0, cp.stderr
        rm = as_user(name, "rm", "-rf", str(copy))
        assert rm.returncode == 0, rm.stderr
        assert not copy.exists()
        # Writes into the read-only mount are still refused, mode bits notwithstanding.
        w = as_user(name, "mkdir", str(mp / "new"))
        assert w.returncode != 0 and "Read-only file system" in w.stderr, w.stderr
    finally:
        subprocess.run(["umount", str(mp)], capture_output=True)
        force_unmount(mp)


def test_uid_gid_and_modes_are_shown_as_asked(seeded, mount):
    m = mount(REPO, args=["--uid", "1234", "--gid", "4321", "--file-mode", "0640", "--dir-mode", "750"])
    for p, mode in ((m.path, 0o750), (m.path / "later.txt", 0o640)):
        st = os.stat(p)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 4321, mode), p
    assert (m.path / "later.txt").read_bytes() == b"second commit\n"


def test_bad_modes_are_refused_at_parse_time(tmp_path):
    for mode in ("888", "01777", "rw"):
        r = subprocess.run([HUBFS, "mount", REPO, str(tmp_path), "--file-mode", mode],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and "octal mode" in r.stderr, (mode, r.stderr)


def test_non_empty_mountpoint_is_refused_unless_allowed(seeded, emulator, mount, tmp_path):
    mp = tmp_path / "full"
    mp.mkdir()
    (mp / "mine.txt").write_text("keep me\n")
    r = run_mount(REPO, mp, emulator, token=WRITE_TOKEN, cache_dir=tmp_path / "c")
    assert r.returncode == 1
    assert "not empty" in r.stderr and "mine.txt" in r.stderr and "--allow-non-empty" in r.stderr, r.stderr
    assert not is_mounted(mp)
    m = mount(REPO, name="full", args=["--allow-non-empty"])
    assert (m / "later.txt").exists() and not (m / "mine.txt").exists()
    m.unmount()
    assert (mp / "mine.txt").read_text() == "keep me\n"


def test_slash_in_revision_gets_a_percent_encoding_hint(seeded, emulator, tmp_path):
    mp = tmp_path / "m"
    r = run_mount(f"{REPO}@feature/x", mp, emulator, token=WRITE_TOKEN, cache_dir=tmp_path / "c")
    assert r.returncode == 1
    assert f"{REPO}@feature%2Fx" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# ---------------------------------------------------------------- completions, man page


def test_completions_and_man_page_come_from_the_cli_definition(tmp_path):
    bash = subprocess.run([HUBFS, "completions", "bash"], capture_output=True, text=True, timeout=20)
    assert bash.returncode == 0
    script = tmp_path / "hubfs.bash"
    script.write_text(bash.stdout)
    # The script loads in bash and completes subcommands and mount options.
    probe = ("source " + str(script) + "; COMP_WORDS=(hubfs mount --allow-n); COMP_CWORD=2; "
             "_hubfs hubfs --allow-n mount; printf '%s\\n' \"${COMPREPLY[@]}\"")
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=20)
    assert "--allow-non-empty" in out.stdout.split(), (out.stdout, out.stderr)
    for shell in ("zsh", "fish"):
        r = subprocess.run([HUBFS, "completions", shell], capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and "cache-dir" in r.stdout, shell
    man = subprocess.run([HUBFS, "man"], capture_output=True, text=True, timeout=20)
    assert man.returncode == 0 and man.stdout.startswith(".ie") and ".TH hubfs 1" in man.stdout
    assert "completions" in man.stdout and "status" in man.stdout
    mount_page = subprocess.run([HUBFS, "man", "mount"], capture_output=True, text=True, timeout=20)
    assert ".TH hubfs-mount" in mount_page.stdout and "allow\\-non\\-empty" in mount_page.stdout
    assert "fuse.hubfs" in mount_page.stdout  # the examples (after_help) are in it
    if shutil.which("groff"):
        g = subprocess.run(["groff", "-man", "-Tutf8", "-ww"], input=man.stdout, capture_output=True,
                           text=True, timeout=20)
        assert g.returncode == 0 and "warning" not in g.stderr, g.stderr
    helptext = subprocess.run([HUBFS, "mount", "--help"], capture_output=True, text=True, timeout=20).stdout
    assert "Examples:" in helptext and "fuse.hubfs" in helptext
