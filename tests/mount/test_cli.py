"""`hubfs mount` / `unmount` / `status`: exit codes, one-line reasons, nothing left behind."""

import os
import subprocess
import time

from conftest import HUBFS, WRITE_TOKEN, hubfs_env, is_mounted, run_mount, wait_until


def test_mount_returns_only_when_live_and_unmount_cleans_up(seeded, emulator, tmp_path):
    mp = tmp_path / "m"
    r = run_mount("alice/tiny-model", mp, emulator, token=WRITE_TOKEN, cache_dir=tmp_path / "c")
    assert r.returncode == 0, r.stderr
    # Live the moment the command returns.
    assert is_mounted(mp)
    assert (mp / "later.txt").read_bytes() == b"second commit\n"
    st = subprocess.run([HUBFS, "status", str(mp)], capture_output=True, text=True, timeout=20)
    assert st.returncode == 0 and "alice/tiny-model" in st.stdout, st.stderr
    u = subprocess.run([HUBFS, "unmount", str(mp)], capture_output=True, text=True, timeout=30)
    assert u.returncode == 0, u.stderr
    assert not is_mounted(mp)


def test_plain_umount_works_and_the_daemon_exits(seeded, emulator, tmp_path):
    mp = tmp_path / "m"
    r = run_mount("alice/tiny-model", mp, emulator, token=WRITE_TOKEN, cache_dir=tmp_path / "c")
    assert r.returncode == 0, r.stderr
    pids = subprocess.run(["pgrep", "-f", f"hubfs mount alice/tiny-model {mp}"], capture_output=True, text=True).stdout.split()
    assert pids
    subprocess.run(["umount", str(mp)], check=True)
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), 30)


def test_mount_failures_have_one_line_reasons(seeded, emulator, tmp_path):
    cases = [
        ("alice/no-such-repo", tmp_path / "a", "not found"),
        ("alice/tiny-model@no-such-branch", tmp_path / "b", "revision"),
        ("alice/tiny-model", tmp_path / "missing" / "dir", "mountpoint"),
        ("not a valid id!", tmp_path / "c", "invalid"),
    ]
    for source, mp, needle in cases:
        if "missing" not in str(mp):
            mp.mkdir(parents=True, exist_ok=True)
        cmd = [HUBFS, "mount", source, str(mp), "--endpoint", emulator.url, "--cache-dir", str(tmp_path / "cache")]
        r = subprocess.run(cmd, capture_output=True, text=True, env=hubfs_env(WRITE_TOKEN), timeout=60)
        assert r.returncode != 0, source
        msg = r.stderr.strip()
        assert len(msg.splitlines()) == 1, msg
        assert needle in msg.lower(), (source, msg)
        assert not is_mounted(mp) if mp.exists() else True


def test_ca_bundle_from_the_environment_is_read_or_refused(seeded, emulator, tmp_path):
    """SSL_CERT_FILE / REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE name CAs trusted besides the built-in
    roots: a bundle that is missing or holds no certificate fails the mount with a one-line
    reason naming it (not a silent fallback to other roots); a real bundle mounts."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    huge = tmp_path / "huge.pem"
    with open(huge, "wb") as f:
        f.truncate(17 << 20)
    # Only the variable under test is set (an empty one counts as unset).
    unset = {v: "" for v in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    for var, path, needle in [
        ("REQUESTS_CA_BUNDLE", tmp_path / "absent.pem", "cannot read"),
        ("SSL_CERT_FILE", junk, "no certificate"),
        # A device or FIFO would hang the mount or fill its memory.
        ("SSL_CERT_FILE", "/dev/zero", "not a regular file"),
        ("SSL_CERT_FILE", huge, "larger than 16 MiB"),
    ]:
        mp = tmp_path / f"m-{var}"
        r = run_mount("alice/tiny-model", mp, emulator, cache_dir=tmp_path / "c", env_extra={**unset, var: str(path)})
        assert r.returncode != 0, var
        msg = r.stderr.strip()
        assert len(msg.splitlines()) == 1 and str(path) in msg and needle in msg, msg
        assert not is_mounted(mp)
    system_bundle = "/etc/ssl/certs/ca-certificates.crt"
    assert os.path.exists(system_bundle)
    mp = tmp_path / "m-ok"
    r = run_mount("alice/tiny-model", mp, emulator, cache_dir=tmp_path / "c", env_extra={**unset, "CURL_CA_BUNDLE": system_bundle})
    assert r.returncode == 0, r.stderr
    try:
        assert (mp / "later.txt").read_bytes() == b"second commit\n"
    finally:
        subprocess.run([HUBFS, "unmount", str(mp)], capture_output=True, timeout=30)


def test_busy_mountpoint_is_refused(seeded, emulator, mount, tmp_path):
    m = mount("alice/tiny-model")
    r = run_mount("alice/tiny-model", m.path, emulator, token=WRITE_TOKEN, cache_dir=tmp_path / "other")
    assert r.returncode != 0
    assert "busy" in r.stderr.lower()
    assert (m / "later.txt").read_bytes() == b"second commit\n"


def test_status_counts_requests_bytes_and_cache_hits(seeded, mount):
    m = mount("alice/tiny-model")
    (m / "big.bin").read_bytes()
    st = m.status()
    assert st["read"]["bytes_fetched"] >= 40 << 20
    assert st["hub"]["requests"] > 0
    assert st["read"]["block_misses"] > 0
    with open(m / "big.bin", "rb") as f:
        f.read()
    # A second open of a pinned file hits the kernel's page cache or our block cache.
    assert m.status()["read"]["bytes_fetched"] == st["read"]["bytes_fetched"]


def test_token_never_appears_in_process_list_or_logs(seeded, mount):
    m = mount("alice/tiny-model")
    (m / "config.json").read_bytes()
    ps = subprocess.run(["ps", "axww", "-o", "args"], capture_output=True, text=True).stdout
    # hubfs's own processes only: on a shared machine other programs' argv is not ours to judge.
    ours = [line for line in ps.splitlines() if line.split(" ", 1)[0].endswith("/hubfs") or line.startswith("hubfs ")]
    assert any("hubfs mount" in line for line in ours), ps
    assert not [line for line in ours if WRITE_TOKEN in line]
    assert WRITE_TOKEN not in m.log.read_text()


def test_nonsense_numeric_options_are_refused_at_parse_time(tmp_path):
    mp = tmp_path / "m"
    mp.mkdir()
    cases = [
        (["--cache-size", "0"], "too small"),
        (["--cache-size", "1M"], "too small"),
        (["--cache-size", "99999999999999999999"], "too large"),
        (["--cache-size", "20000000T"], "too large"),
        (["--cache-size", "1e30"], "invalid size"),
        (["--io-timeout", "0"], "--io-timeout"),
        (["--io-timeout", "99999999999999999999"], "--io-timeout"),
        (["--max-requests", "0"], "--max-requests"),
        (["--max-requests", "100000"], "--max-requests"),
        (["--fuse-threads", "0"], "--fuse-threads"),
        (["--read-ahead", "0"], "out of range"),
        (["--read-ahead", "100T"], "out of range"),
        (["--commit-delay=-1"], "out of range"),
        (["--commit-delay", "nan"], "out of range"),
        (["--refresh", "0"], "--refresh"),
    ]
    for args, needle in cases:
        # No endpoint is reachable: a parse error must come before any network or mount.
        cmd = [HUBFS, "mount", "alice/tiny-model", str(mp), "--endpoint", "http://127.0.0.1:9",
               "--cache-dir", str(tmp_path / "c"), *args]
        r = subprocess.run(cmd, capture_output=True, text=True, env=hubfs_env(), timeout=20)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert needle in r.stderr, (args, r.stderr)
        assert not is_mounted(mp)
    assert not (tmp_path / "c").exists(), "nothing was created"
    r = subprocess.run([HUBFS, "unmount", "--timeout", "99999999999999999999", str(mp)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "--timeout" in r.stderr, r.stderr
