"""Third-party file system suites on a writable mount: fsx (data-verifying random
reads/writes/truncates, the Rust port of xfstests' exerciser) and the pjdfstest groups that
apply to a Hub-backed tree. The tools come from crates.io (`cargo install --locked`), into
HUBFS_FS_TOOLS (default: <repo>/.tools); scripts/lib/setup.sh installs them first."""

import collections
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import HUBFS, ROOT, WRITE_TOKEN, is_mounted, run_mount
from writes_lib import fresh_repo, hub_bytes, synced

TOOLS = Path(os.environ.get("HUBFS_FS_TOOLS", ROOT / ".tools"))
CONFIG = Path(__file__).parent / "fs_suites" / "pjdfstest.toml"


@pytest.fixture(scope="module")
def tools():
    if not all((TOOLS / "bin" / t).exists() for t in ("fsx", "pjdfstest")):
        cargo = shutil.which("cargo")
        assert cargo, "cargo is needed to install fsx and pjdfstest"
        subprocess.run([cargo, "install", "--locked", "--root", str(TOOLS), "fsx", "pjdfstest"],
                       check=True, timeout=1500)
    return TOOLS / "bin"


@pytest.mark.timeout(900)
def test_fsx(api, mount, tools, tmp_path):
    repo = fresh_repo(api)
    m = mount(repo)
    r = subprocess.run([str(tools / "fsx"), "-N", "3000", "-S", "11", "-P", str(tmp_path), str(m / "fsx.bin")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "A-OK" in r.stdout + r.stderr
    # What fsx left in the file lands byte for byte.
    final = (m / "fsx.bin").read_bytes()
    synced(m)
    assert hub_bytes(api, repo, "fsx.bin") == final


# Why each kind of pjdfstest failure is expected on a Hub-backed tree (SEMANTICS.md, "File
# system suites"): (test name pattern, reason pattern, why). A failure matching none of these is
# a bug and fails the test.
PJD_ACCEPTED = [
    (r".", r"EPERM|Operation not permitted",
     "symlink, link, mknod, mkfifo, sockets and chmod/chown to other values are refused (EPERM)"),
    (r"^(symlink|link|mknod|mkfifo|chmod)::", r"assertion failed: (symlink|link|mknod|f|chmod)\(",
     "the same refusals, asserted by the test itself"),
    (r"::permission_bits_from_mode$", r"left == right|is_ok",
     "modes are fixed (files 0644, directories 0755): the mode given to open/mkdir is not kept"),
    (r"::(changed_time_fields_success|changed_time_parent_success|update_mtime_ctime_success_folder::regular)$",
     r"Timestamps did not change",
     "directory times are the commit's date: creating or removing an entry does not change them"),
    (r"^utimensat::", r"left == right|assertion|was not updated",
     "utimes/utimensat are accepted and ignored (the Hub keeps no times): the times read back are not the ones set"),
    (r"^rename::updates_link_parent$", r"left == right", "directories always have nlink 2"),
    (r"^rename::(unchanged_ctime_failed::(regular|dir)|write_access_required_subdir)$",
     r"Permission denied|rename\(&(file|another_subdir_path), &(new_path|subdir)\)",
     "the test gives a directory mode 0777 (or a file 0600) for another user; modes are fixed, so that "
     "user cannot write (EACCES)"),
]


def pjd_results(out):
    """{group: {"ok": n, "FAILED": n, "skipped": n}} and [(test, reason)] of the failures."""
    lines = out.splitlines()
    groups, failures = {}, []
    for i, line in enumerate(lines):
        m = re.match(r"^(\w+)::(\S+)\s+(ok|FAILED|skipped)\b", line)
        if not m:
            continue
        g = groups.setdefault(m.group(1), {"ok": 0, "FAILED": 0, "skipped": 0})
        g[m.group(3)] += 1
        if m.group(3) == "FAILED":
            failures.append((f"{m.group(1)}::{m.group(2)}", lines[i + 1].strip() if i + 1 < len(lines) else ""))
    return groups, failures


def pjd_why(test, reason):
    for name, why_re, why in PJD_ACCEPTED:
        if re.search(name, test) and re.search(why_re, reason):
            return why
    return None


# Passing cases per group when this suite was last counted (SEMANTICS.md): must not regress.
PJD_MIN_PASSED = {
    "chmod": 8, "chown": 12, "ftruncate": 5, "link": 9, "mkdir": 7, "mkfifo": 7, "mknod": 12, "open": 12,
    "rename": 14, "rmdir": 11, "symlink": 7, "truncate": 12, "unlink": 6, "posix_fallocate": 4,
    "utimensat": 3,
}


@pytest.mark.timeout(900)
def test_pjdfstest_all_groups(api, emulator, tools, tmp_path):
    """Every pjdfstest group (none is left out): passes per group may not drop, and every
    failure must be one of the documented refusals. The mountpoint is short (a Unix socket's
    path must fit in 108 bytes, or socket cases fail on the name, not on hubfs), and
    --allow-other lets the cases that switch to another user reach the mount."""
    repo = fresh_repo(api)
    mp = Path(tempfile.mkdtemp(prefix="pjd", dir="/tmp"))
    r = run_mount(repo, mp, emulator, token=WRITE_TOKEN, cache_dir=tmp_path / "cache", args=["--allow-other"])
    assert r.returncode == 0, r.stderr
    try:
        os.makedirs(mp / "t")
        r = subprocess.run([str(tools / "pjdfstest"), "-c", str(CONFIG), "-p", str(mp / "t")],
                           capture_output=True, text=True, timeout=700)
    finally:
        subprocess.run([HUBFS, "unmount", str(mp)], capture_output=True, timeout=180)
        if is_mounted(mp):
            subprocess.run(["umount", "-l", str(mp)], capture_output=True)
        shutil.rmtree(mp, ignore_errors=True)
    out = r.stdout + r.stderr
    summary = re.search(r"Summary: (\d+) failed, (\d+) skipped, (\d+) passed", out)
    assert summary, out[-3000:]
    groups, failures = pjd_results(out)
    print(summary.group(0))
    for g, c in sorted(groups.items()):
        print(f"  {g:16} {c['ok']:3} passed {c['FAILED']:3} failed {c['skipped']:3} skipped")
    why = {}
    for test, reason in failures:
        why.setdefault(pjd_why(test, reason), []).append(test)
    for w, tests in why.items():
        per_group = collections.Counter(t.split("::")[0] for t in tests)
        print(f"  {len(tests):3} x {w}: {dict(per_group)}")
    assert None not in why, f"failures with no documented reason: {[f for f in failures if f[0] in why[None]]}"
    low = {g: (groups.get(g, {}).get("ok", 0), n) for g, n in PJD_MIN_PASSED.items()
           if groups.get(g, {}).get("ok", 0) < n}
    assert not low, f"groups passing fewer cases than before (passed, before): {low}"


@pytest.mark.timeout(900)
def test_concurrent_fsx_with_other_seeds(api, mount, tools, tmp_path):
    """No fsstress can be had here (xfstests is not packaged for Debian, no crate or PyPI
    package provides it: SEMANTICS.md), so the mount gets what exists: three fsx processes at
    once, with other seeds, each on its own file (one in a sub-directory), while the committer
    lands their closes; then every file lands byte for byte and the mount shows the same."""
    repo = fresh_repo(api)
    m = mount(repo, args=["--commit-delay", "0.3"])
    os.makedirs(m / "sub")
    names = ["c1.bin", "c2.bin", "sub/c3.bin"]
    procs = []
    for i, name in enumerate(names):
        art = tmp_path / f"art{i}"
        art.mkdir()
        procs.append(subprocess.Popen([str(tools / "fsx"), "-N", "1500", "-S", str(101 + i), "-P", str(art), str(m / name)],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for name, p in zip(names, procs):
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0 and "A-OK" in out, f"{name}: {out[-4000:]}"
    finals = {name: (m / name).read_bytes() for name in names}
    synced(m)
    for name in names:
        assert hub_bytes(api, repo, name) == finals[name], name
        assert (m / name).read_bytes() == finals[name], f"{name} changed when its commit landed"
