"""`--metrics-addr`: Prometheus text at /metrics, parsed by the official Python client's parser,
checked against `hubfs status --json`, the emulator's own counters and the Hub."""

import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pathlib import Path

from conftest import HUBFS, READ_TOKEN, hubfs_env, is_mounted, run_mount, sha, wait_until
from writes_lib import fresh_repo, hub_bytes, synced, write


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_mount(mount, source, args=(), **kw):
    """mount(...) with `--metrics-addr` on a free port -> (Mount, port). A port found free can be
    taken by another process before the daemon binds it (other suites run on the same machine):
    that failure, and only that one, is retried on another port."""
    for attempt in range(5):
        port = free_port()
        try:
            return mount(source, args=["--metrics-addr", f"127.0.0.1:{port}", *args], **kw), port
        except AssertionError as e:
            if "cannot listen there" not in str(e) or attempt == 4:
                raise


def scrape(port):
    """{(name, frozenset(labels)): value} of one scrape, and its Content-Type. The timeout is
    generous: a scrape may wait up to the 5 s head timeout behind another client (see
    test_a_silent_client_holds_the_endpoint_at_most_five_seconds) on a loaded machine."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
        ctype = r.headers["Content-Type"]
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, ctype


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def total(samples, name):
    """Sum of a family's samples over all label values."""
    return sum(v for (n, _), v in samples.items() if n == name)


def test_scrape_during_and_after_a_read_agrees_with_status_and_emulator(
        seeded, originals, mount, emulator):
    size = (originals / "tiny-model/big.bin").stat().st_size
    before = emulator.stats()
    m, port = metrics_mount(mount, "alice/tiny-model", token=READ_TOKEN)
    assert m.status()["daemon"]["metrics_addr"] == f"127.0.0.1:{port}"
    for args in (["status", str(m.path)], ["status"]):
        human = subprocess.run([HUBFS, *args], capture_output=True, text=True, timeout=20).stdout
        assert f"http://127.0.0.1:{port}/metrics" in human, human

    # Slow the Hub down so the read lasts long enough to be seen in progress.
    emulator.shaping(bandwidth=8 << 20)
    digest = {}
    reader = threading.Thread(target=lambda: digest.update(got=sha(m / "big.bin")))
    try:
        reader.start()
        during = []
        while reader.is_alive():
            during.append(scrape(port)[0])
        reader.join()
    finally:
        emulator.shaping()
    assert digest["got"] == sha(originals / "tiny-model/big.bin")

    # Seen mid-read: some bytes served but not all, and fetches in flight.
    served = [value(s, "hubfs_read_served_bytes_total") for s in during]
    assert any(0 < b < size for b in served), served[:: max(1, len(served) // 20)]
    assert served == sorted(served), "a counter went backwards"
    assert max(value(s, "hubfs_inflight_fetches") for s in during) >= 1

    after, ctype = scrape(port)
    assert ctype.startswith("text/plain; version=0.0.4")
    st = m.status()
    emu = emulator.stats()
    # Same figures as `hubfs status`.
    for name, got in [
        ("hubfs_read_served_bytes_total", st["read"]["bytes_read"]),
        ("hubfs_read_fetched_bytes_total", st["read"]["bytes_fetched"]),
        ("hubfs_read_fetches_total", st["read"]["fetches"]),
        ("hubfs_cache_hits_total", st["cache"]["hits"]),
        ("hubfs_cache_misses_total", st["cache"]["misses"]),
        ("hubfs_cache_used_bytes", st["cache"]["used_bytes"]),
        ("hubfs_hub_received_bytes_total", st["hub"]["bytes_received"]),
        ("hubfs_hub_invalid_entries_total", st["hub"]["invalid_entries"]),
        ("hubfs_passthrough_opens_total", st["passthrough"]["opens"]),
        ("hubfs_inodes", st["inodes"]),
    ]:
        assert value(after, name) == got, name
    assert value(after, "hubfs_read_served_bytes_total") >= size
    assert value(after, "hubfs_inflight_fetches") == 0
    assert value(after, "hubfs_offline") == 0
    requests = total(after, "hubfs_hub_requests_total")
    assert requests == st["hub"]["requests"] > 0
    assert total(after, "hubfs_hub_request_duration_seconds_count") == requests
    kinds = {dict(labels)["kind"] for (n, labels) in after if n == "hubfs_hub_requests_total"}
    assert {"info", "resolve"} <= kinds, kinds
    # Same figures as the emulator saw: every request and every content byte came from it.
    assert emu["requests"] - before["requests"] == requests
    assert emu["bytes_served"] - before["bytes_served"] == value(after, "hubfs_read_fetched_bytes_total")

    # Mounted again on the same cache: the whole file is cached, so the open is a passthrough
    # open (the kernel reads the cache file itself), no Hub bytes, and the scrape says so.
    m.unmount()
    m2, port2 = metrics_mount(mount, "alice/tiny-model", token=READ_TOKEN, cache_dir=m.cache_dir)
    assert sha(m2 / "big.bin") == digest["got"]
    again, _ = scrape(port2)
    st2 = m2.status()
    assert value(again, "hubfs_passthrough_opens_total") == st2["passthrough"]["opens"] == 1
    assert value(again, "hubfs_read_fetched_bytes_total") == st2["read"]["bytes_fetched"] == 0
    assert value(again, "hubfs_cache_used_bytes") == st2["cache"]["used_bytes"] >= size
    assert emulator.stats()["bytes_served"] == emu["bytes_served"]


def test_pending_writes_go_to_zero_after_sync(api, mount):
    repo = fresh_repo(api)
    # A long quiet period: the change stays pending until `hubfs sync`.
    m, port = metrics_mount(mount, repo, args=["--commit-delay", "600"])
    write(m / "notes.txt", b"pending until synced\n")
    # A version is queued at the kernel's release, which comes just after close returned.
    assert wait_until(lambda: m.status()["writes"]["pending"] >= 1, 30)
    pending, _ = scrape(port)
    assert value(pending, "hubfs_writes_pending") == m.status()["writes"]["pending"] >= 1
    assert value(pending, "hubfs_commits_total") == 0
    synced(m)
    done, _ = scrape(port)
    assert value(done, "hubfs_writes_pending") == 0
    assert value(done, "hubfs_commits_total") == m.status()["writes"]["commit"]["commits"] >= 1
    assert value(done, "hubfs_commit_conflicts") == 0
    assert value(done, "hubfs_hub_requests_total", kind="commit", status="200") >= 1
    assert hub_bytes(api, repo, "notes.txt") == b"pending until synced\n"


def test_other_paths_are_not_found_and_a_taken_port_fails_the_mount(seeded, mount, emulator, tmp_path):
    _, port = metrics_mount(mount, "alice/tiny-model", token=READ_TOKEN)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
    assert e.value.code == 404
    r = run_mount("alice/tiny-model", tmp_path / "second", emulator, token=READ_TOKEN,
                  cache_dir=tmp_path / "c2", args=["--metrics-addr", f"127.0.0.1:{port}"])
    assert r.returncode != 0
    assert f"--metrics-addr 127.0.0.1:{port}: cannot listen there" in r.stderr
    assert not subprocess.run(["mountpoint", "-q", str(tmp_path / "second")]).returncode == 0


def test_fstab_option_metrics_addr_through_the_mount_helper(seeded, originals, emulator, tmp_path):
    """`metrics_addr=` in an fstab line (here: the helper mount(8) would run, called directly)."""
    helper = tmp_path / "mount.fuse.hubfs"
    helper.symlink_to(Path(HUBFS).resolve())
    mp = tmp_path / "m"
    mp.mkdir()
    for _ in range(5):  # a port found free may be taken before the daemon binds it: try another
        port = free_port()
        r = subprocess.run([str(helper), "alice/tiny-model", str(mp), "-o",
                            f"ro,metrics_addr=127.0.0.1:{port},cache_dir={tmp_path / 'c'},endpoint={emulator.url}"],
                           capture_output=True, text=True, timeout=60, env=hubfs_env())
        if "cannot listen there" not in r.stderr:
            break
    try:
        assert r.returncode == 0, r.stderr
        assert (mp / "later.txt").read_bytes() == b"second commit\n"
        samples, _ = scrape(port)
        assert value(samples, "hubfs_read_served_bytes_total") == len(b"second commit\n")
        resolves = sum(v for (n, labels), v in samples.items()
                       if n == "hubfs_hub_requests_total" and dict(labels)["kind"] == "resolve")
        assert resolves >= 1
        # Read-only: no write figures at all rather than zeros.
        assert not any(n.startswith(("hubfs_writes_", "hubfs_commit")) for n, _ in samples)
    finally:
        subprocess.run(["umount", str(mp)], capture_output=True)
        wait_until(lambda: not is_mounted(mp), 10)


def test_a_silent_client_holds_the_endpoint_at_most_five_seconds(seeded, mount):
    """One scrape at a time, but a client that connects and sends nothing is dropped after the
    5 s head timeout: the next scraper is served, not starved."""
    _, port = metrics_mount(mount, "alice/tiny-model", token=READ_TOKEN)
    with socket.create_connection(("127.0.0.1", port)) as silent:
        time.sleep(0.2)  # accepted first
        started = time.monotonic()
        samples, _ = scrape(port)
        waited = time.monotonic() - started
        assert value(samples, "hubfs_offline") == 0
        # Served after the silent client was dropped (not before: one scrape at a time), and
        # not left waiting for good; the upper bound leaves a loaded machine room.
        assert 3 < waited < 30, waited
        # The daemon ended the silent connection (a recv on an open one would time out).
        silent.settimeout(2)
        while silent.recv(1024):
            pass
