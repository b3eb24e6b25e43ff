"""The shared cache tier (issue 15) against a real 3-node Garage cluster (replication factor 3)
on loopback: nodes with separate local caches fetch a file's bytes from the Hub about once;
what the tier serves is checked (planted garbage is detected, deleted and refetched from the
Hub); a store that hangs, refuses, or dies mid-read leaves reads correct and about as fast as
the Hub alone; a store slower than the Hub shares runs with it; the tier never widens access to
a private repo; nodes starting together fetch each byte about once (claims), and a dead
node's claims cost a bounded wait, not the read."""

import contextlib
import os
import signal
import threading
import time

import numpy as np
import pytest

from conftest import READ_TOKEN, WRITE_TOKEN, bytes_served, faults, run_mount, sha, wait_until
from garage import Garage
from throttle import Throttle

BIG = 1 << 30  # issue 15: three nodes read the same 1 GiB file
SMALL = 24 << 20
TOGETHER = 128 << 20  # three nodes read it at the same moment
SPLIT = 160 << 20  # a node knows both rates after ~24 MiB read (runs issued before are whole): room for many splits
BLOCK = 128 << 10
REPO = "alice/shared-cache"


@pytest.fixture(scope="module")
def garage(tmp_path_factory):
    g = Garage(tmp_path_factory.mktemp("garage")).start()
    yield g
    g.stop()


def _write_random(path, size, seed):
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 << 20)
            f.write(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
            left -= n


@pytest.fixture(scope="module")
def repo(api, workdir):
    """A private repo: big.bin (1 GiB), small files for the fault tests, split.bin."""
    api.create_repo(REPO, private=True, exist_ok=True)
    digests = {}
    for name, size, seed in [("big.bin", BIG, 1), ("garbage.bin", SMALL, 2), ("hang.bin", SMALL, 3),
                             ("deny.bin", SMALL, 4), ("kill.bin", SMALL, 5), ("split.bin", SPLIT, 6),
                             ("together.bin", TOGETHER, 7), ("claimed.bin", SMALL, 8),
                             ("failed.bin", SMALL, 9)]:
        path = workdir / f"shared-{name}"
        _write_random(path, size, seed)
        digests[name] = sha(path)
        api.upload_file(repo_id=REPO, path_or_fileobj=str(path), path_in_repo=name)
        os.remove(path)
    return digests


@contextlib.contextmanager
def hub_far_away(emulator):
    """The Hub a slow link away (1 MiB/s per connection, 20 ms), as it is for a cluster whose
    bucket is near: a node then reads from the tier without sharing runs with the Hub (the
    unshaped emulator, in RAM, is faster than Garage here, and a node would rightly split)."""
    emulator.shaping(latency_ms=20, bandwidth=1 << 20)
    try:
        yield
    finally:
        emulator.shaping()


def node(mount, garage, prefix, timeout_ms=None):
    """One cluster node: its own mount and local cache, the shared tier under `prefix`."""
    return mount(REPO, token=WRITE_TOKEN, args=garage.mount_args(prefix, timeout_ms), env_extra=garage.env())


def shared(m):
    return m.status()["shared_cache"]["stats"]


def settle_fills(m, timeout=180):
    """Waits until the node has nothing left to write to the tier: no fill queued or being
    written, no segment in the backlog (written, dropped or failed: those are counted, and the
    caller's figures show them). Seen twice in a row, so a run's last moment (its final
    partial segment is handed over just after the reader got its bytes) is not missed. The
    timeout is generous: Garage writes each byte three times on this shared machine's disk."""
    def idle():
        s = m.status()["shared_cache"]
        return s["queued_fills"] == 0 and s["backlog"] == 0
    def done():
        if not idle():
            return False
        time.sleep(0.3)
        return idle()
    assert wait_until(done, timeout, 0.2), m.status()["shared_cache"]
    return shared(m)


def object_len(key):
    """An entry's object size: its bytes plus a 4-byte crc per block (name: OFFSET+LEN.BLOCK)."""
    length, block = (int(x) for x in key.rsplit("/", 1)[1].split("+")[1].split("."))
    return length + 4 * -(-length // block)


def read_all(path) -> tuple[str, float]:
    t0 = time.monotonic()
    digest = sha(path)
    return digest, time.monotonic() - t0


def test_three_nodes_fetch_a_file_from_the_hub_about_once(garage, repo, mount, emulator):
    a, b, c = (node(mount, garage, "three") for _ in range(3))
    before = bytes_served(emulator)
    assert read_all(a / "big.bin")[0] == repo["big.bin"]
    filled = settle_fills(a)
    assert filled["fill_bytes"] >= 0.95 * BIG, filled
    # The two other nodes read at once, each with an empty local cache, from a Hub that is a
    # slow link away (as for a cluster, whose bucket is near): neither may share its runs with
    # the Hub (the tier is not slower), so the Hub serves them only the probe of its rate.
    results = {}
    threads = [threading.Thread(target=lambda m=m: results.__setitem__(m, read_all(m / "big.bin"))) for m in (b, c)]
    with hub_far_away(emulator):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(d == repo["big.bin"] for d, _ in results.values())
    from_hub = bytes_served(emulator) - before
    print(f"\n3 nodes x {BIG >> 20} MiB: the Hub served {from_hub / BIG:.3f}x the file; node a filled "
          f"{filled['fills']} segments ({filled['deferred']} deferred, {filled['drops']} dropped); b and c read in "
          f"{', '.join(f'{t:.1f} s' for _, t in results.values())}; "
          f"{[{k: shared(m)[k] for k in ('hits', 'errors', 'slow', 'bytes', 'probes', 'split_runs')} for m in (b, c)]}, "
          f"tier per lookup / tier per run / Hub per run MiB/s "
          f"{[tuple(m.status()['shared_cache'][k] for k in ('tier_mib_s', 'tier_run_mib_s', 'hub_mib_s')) for m in (b, c)]}")
    # The Hub served node a the file, and b and c what the tier did not (lookups that timed out
    # on this loaded machine, at most 5% each: asserted below) plus one probe of its rate: about
    # once, where without the tier it serves the file three times.
    not_from_tier = sum(max(0, BIG - shared(m)["bytes"]) for m in (b, c))
    assert BIG <= from_hub <= 1.05 * BIG + not_from_tier, (
        f"the Hub served {from_hub / BIG:.2f} times the file, the tier missed {not_from_tier >> 20} MiB")
    for m in (b, c):
        s = shared(m)
        # A lookup may time out on this loaded 2-CPU machine (three Garage nodes share it): the
        # rest of its run comes from the Hub instead, by design, and the Hub total above stays
        # bounded.
        assert s["bytes"] >= 0.95 * BIG and s["corrupt"] == 0, s
        assert m.status()["read"]["verified_blobs"] >= 1
        # One probe of the Hub's rate at most (half a run: 4 MiB, within the bound above), and
        # no split.
        assert s["probes"] <= 1 and s["split_runs"] == 0 and s["split_hub_bytes"] <= 4 << 20, s


def test_nodes_starting_together_fetch_a_file_from_the_hub_about_once(garage, repo, mount, emulator):
    """Three nodes with empty local caches read the same file at the same moment, nothing in
    the tier yet: each missing segment is claimed by one node, which fetches it from the Hub
    and writes it; the others wait for it and read it from the tier. Without claims the Hub
    served each node the whole file (3x)."""
    nodes = [node(mount, garage, "together") for _ in range(3)]
    before = bytes_served(emulator)
    results = {}
    threads = [threading.Thread(target=lambda m=m: results.__setitem__(m, read_all(m / "together.bin")))
               for m in nodes]
    # The Hub as the benchmark shapes it (20 ms, 50 MB/s per connection): a claimer's fetch
    # takes a while, as it does from a real Hub.
    emulator.shaping(latency_ms=20, bandwidth=50_000_000)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        emulator.shaping()
    assert all(d == repo["together.bin"] for d, _ in results.values())
    from_hub = bytes_served(emulator) - before
    stats = [shared(m) for m in nodes]
    print(f"\n3 nodes at once x {TOGETHER >> 20} MiB: the Hub served {from_hub / TOGETHER:.2f}x the file in "
          f"{', '.join(f'{t:.1f} s' for _, t in results.values())}; "
          f"{[{k: s[k] for k in ('claims', 'waits', 'wait_hits', 'wait_timeouts', 'bytes', 'errors')} for s in stats]}")
    # Races a claim's read-back does not settle (a write landing late) and waits that ran out
    # on this loaded machine each cost a segment fetched twice: about once, not three times.
    # A tier whose lookups fail (Garage starved of CPU on a loaded machine: CI saw 11 failed
    # lookups and reads of 8 s) opens its breaker and sends the node's remaining reads to the
    # Hub, as designed; claims must still keep the Hub well below one whole file per node.
    errors = sum(s["errors"] for s in stats)
    bound = 1.6 if errors == 0 else 2.8
    assert from_hub <= bound * TOGETHER, (
        f"the Hub served {from_hub / TOGETHER:.2f} times the file ({errors} failed tier lookups)")
    assert sum(s["wait_hits"] for s in stats) >= 8, stats
    assert sum(s["claims"] for s in stats) >= 8, stats
    assert all(s["corrupt"] == 0 for s in stats), stats


def test_a_failed_hub_fetch_releases_its_claims_at_once(garage, repo, mount, emulator):
    """Node a claims a file's missing segments, then every Hub fetch fails (403, not retried):
    its claims go at once, so node b, reading once the Hub is back, finds nothing to wait for.
    Left in place they would cost b a wait of 5 s before it fetched the file itself."""
    prefix = "failed-fetch"
    a, b = (node(mount, garage, prefix) for _ in range(2))
    with faults(emulator, "route=content,status=403"):
        with pytest.raises(OSError) as e:
            (a / "failed.bin").read_bytes()
        # The read fails as the Hub said (403: EACCES), after node a claimed the segments.
        assert e.value.errno == 13, e.value
    assert shared(a)["claims"] >= 1, shared(a)
    s3 = garage.s3()

    def claims_left():
        listed = s3.list_objects_v2(Bucket=garage.bucket, Prefix=prefix + "/hubfs-claims/")
        return [o["Key"] for o in listed.get("Contents", [])]
    assert wait_until(lambda: not claims_left(), 10, 0.2), claims_left()
    digest, _ = read_all(b / "failed.bin")
    assert digest == repo["failed.bin"]
    s = shared(b)
    assert s["waits"] == 0 and s["claims"] >= 1, s


@pytest.mark.parametrize("claim", [b"hubfs-claim-1 0123456789abcdef-4242", b"not a claim"], ids=["dead-node", "junk"])
def test_a_dead_nodes_claims_cost_one_wait_not_the_read(garage, repo, mount, emulator, claim):
    """Every entry of a file is missing and claimed by a node that will never write it (it
    died), or the claims are junk. A reader waits for the dead node once (all its runs in
    flight at the same time), then stops waiting for that node and reads from the Hub; junk is
    not a claim and costs no wait."""
    prefix = "claimed-" + ("dead" if claim.startswith(b"hubfs") else "junk")
    a = node(mount, garage, prefix)
    _, hub_time = read_all(a / "claimed.bin")
    settle_fills(a)
    s3 = garage.s3()
    for k in _entries(s3, garage, prefix):
        s3.delete_object(Bucket=garage.bucket, Key=k)
        s3.put_object(Bucket=garage.bucket, Key=k.replace("/hubfs-v2/", "/hubfs-claims/"), Body=claim)
    b = node(mount, garage, prefix)
    before = bytes_served(emulator)
    digest, elapsed = read_all(b / "claimed.bin")
    assert digest == repo["claimed.bin"]
    s = shared(b)
    from_hub = bytes_served(emulator) - before
    assert SMALL <= from_hub <= 1.05 * SMALL and s["bytes"] == 0, (from_hub, s)
    if claim.startswith(b"hubfs"):
        # The runs in flight when the first wait ran out waited too; none after. A wait is
        # counted per run and segment, and two runs in flight can share a segment (a run ends
        # mid-segment, or a context run starts there): up to two per segment, not one per run
        # of the whole read (CI saw 8 for 6 segments once).
        assert 1 <= s["wait_timeouts"] <= s["waits"] <= 2 * (SMALL >> 22), s
        # One wait: 5 s while the Hub's rate is unknown (then less), plus the Hub's own time.
        assert elapsed < hub_time * 3 + 12, f"{elapsed:.1f}s, {hub_time:.1f}s from the Hub alone"
    else:
        assert s["waits"] == 0 and s["claims"] >= 1, s
    assert s["wait_hits"] == 0 and s["corrupt"] == 0, s


def test_claims_under_a_new_id_per_segment_stop_being_honoured(garage, repo, mount, emulator):
    """A hostile writer plants a claim under a new node id on each of a file's 40 segments, so
    waiting out one node never helps: after a few waits in a row ran out, whoever the
    claimers, the mount honours no claim for a while and reads from the Hub."""
    prefix = "claimed-rotating"
    a = node(mount, garage, prefix)
    _, hub_time = read_all(a / "split.bin")
    settle_fills(a)
    s3 = garage.s3()
    entries = _entries(s3, garage, prefix)
    assert len(entries) == SPLIT >> 22
    for i, k in enumerate(entries):
        s3.delete_object(Bucket=garage.bucket, Key=k)
        s3.put_object(Bucket=garage.bucket, Key=k.replace("/hubfs-v2/", "/hubfs-claims/"),
                      Body=b"hubfs-claim-1 %016x-1" % i)
    b = node(mount, garage, prefix)
    digest, elapsed = read_all(b / "split.bin")
    assert digest == repo["split.bin"]
    s = shared(b)
    print(f"\nplanted claims: {s['waits']} waits, {s['wait_timeouts']} ran out; read in {elapsed:.1f} s")
    # Without the bound on waits in a row, every segment would wait its whole budget (40).
    # Here 13-18 ran out; a clean-clone CI run on a loaded machine counted 23 (runs in flight
    # wait at once, and a claim whose re-read times out counts as gone).
    assert 6 <= s["wait_timeouts"] < 3 * len(entries) // 4, s
    assert elapsed < hub_time * 3 + 15, f"{elapsed:.1f}s, {hub_time:.1f}s from the Hub alone"


def test_a_tier_slower_than_the_hub_shares_runs_with_it(garage, repo, mount, emulator):
    """Node b reaches the bucket through a link capped at 4 MiB/s per connection; the Hub is
    unshaped (local, in RAM), so the tier is measurably slower. Once b knows both rates (the
    Hub's from a probe, or from the rest of a lookup cut short), it shares each run: the head
    from the tier, the tail from the Hub at the same time, in proportion to their rates.
    Counters, not clocks: runs were
    split, both sources served bytes, the bytes add up to the file, and the Hub served less
    than the file (the tier kept its share); the breaker stayed closed (slow is not down)."""
    a = node(mount, garage, "split")
    digest, hub_time = read_all(a / "split.bin")
    assert digest == repo["split.bin"]
    settle_fills(a)
    with Throttle(garage.endpoint, 4 << 20) as link:
        b = mount(REPO, token=WRITE_TOKEN, args=garage.mount_args("split", endpoint=link.endpoint),
                  env_extra=garage.env())
        before = bytes_served(emulator)
        digest, split_time = read_all(b / "split.bin")
        assert digest == repo["split.bin"]
        from_hub = bytes_served(emulator) - before
        st = b.status()["shared_cache"]
    s = st["stats"]
    print(f"\nslow tier: the Hub served {from_hub / SPLIT:.2f}x the file, the tier {s['bytes'] / SPLIT:.2f}x; "
          f"{s['probes']} probe(s), {s['split_runs']} runs split, {s['slow']} lookups cut short; tier per run "
          f"{st['tier_run_mib_s']} MiB/s, Hub per run {st['hub_mib_s']} MiB/s; read in {split_time:.1f} s "
          f"(node a from the Hub alone: {hub_time:.1f} s; not asserted)")
    assert s["split_runs"] > 0 and s["split_hub_bytes"] > 0 and s["probes"] <= 1, s
    assert s["bytes"] > 0 and s["corrupt"] == 0, s
    assert from_hub < SPLIT and from_hub + s["bytes"] <= 1.1 * SPLIT, (from_hub, s)
    assert s["split_hub_bytes"] <= from_hub, (from_hub, s)
    assert 0 < st["tier_run_mib_s"] < st["hub_mib_s"], st
    assert not st["breaker_open"], st


def _entries(s3, garage, prefix):
    """The names of the entries under `prefix` (not the claims beside them)."""
    listed = s3.list_objects_v2(Bucket=garage.bucket, Prefix=prefix + "/hubfs-v2/")
    return [o["Key"] for o in listed.get("Contents", [])]


def _pick(garage, prefix, n):
    s3 = garage.s3()
    keys = sorted(_entries(s3, garage, prefix), key=lambda k: int(k.rsplit("/", 1)[1].split("+")[0]))
    step = len(keys) // n
    return s3, [keys[i * step] for i in range(n)]


def test_the_aws_secret_is_used_but_not_kept_in_the_daemons_environment(garage, repo, mount, emulator):
    """The tier's credentials come from the environment, like the Hub token: once read, the
    secret is wiped from the daemon's environment block (`/proc/PID/environ`, core dumps)."""
    a = node(mount, garage, "secret")
    assert read_all(a / "kill.bin")[0] == repo["kill.bin"]
    settle_fills(a)
    b = node(mount, garage, "secret")
    before = bytes_served(emulator)
    with hub_far_away(emulator):
        assert read_all(b / "kill.bin")[0] == repo["kill.bin"]
    # The credentials worked: node b read from the bucket without an error (a refused
    # signature counts as one). Not all of it: on a loaded machine a lookup past the tier's
    # first-byte timeout sends its run (a third of the file) to the Hub, as designed.
    s = shared(b)
    from_hub = bytes_served(emulator) - before
    assert s["bytes"] >= SMALL // 3 and s["errors"] == 0, (from_hub, s)
    assert from_hub + s["bytes"] <= 1.2 * SMALL, (from_hub, s)
    secret = garage.env()["AWS_SECRET_ACCESS_KEY"].encode()
    key_id = garage.env()["AWS_ACCESS_KEY_ID"].encode()
    for m in (a, b):
        environ = open(f"/proc/{m.status()['daemon']['pid']}/environ", "rb").read()
        assert key_id in environ, "the rest of the environment is kept"
        assert secret not in environ


def test_garbage_in_the_bucket_is_detected_deleted_and_refetched(garage, repo, mount, emulator):
    a = node(mount, garage, "garbage")
    assert read_all(a / "garbage.bin")[0] == repo["garbage.bin"]
    settle_fills(a)
    s3, keys = _pick(garage, "garbage", 3)
    good = s3.get_object(Bucket=garage.bucket, Key=keys[1])["Body"].read()
    planted = [
        os.urandom(len(good)),                     # garbage of the right length
        good[:-1],                                 # truncated
        good[:100] + bytes([good[100] ^ 1]) + good[101:],  # one flipped bit
    ]
    for k, body in zip(keys, planted):
        s3.put_object(Bucket=garage.bucket, Key=k, Body=body)
    b = node(mount, garage, "garbage")
    before = bytes_served(emulator)
    assert read_all(b / "garbage.bin")[0] == repo["garbage.bin"]
    s = shared(b)
    # Each damaged entry is found when a lookup reaches its bad frame; a run that had already
    # turned to the Hub before reaching one takes those blocks from the Hub instead (they are
    # right either way), so not every planted object need be met: at least one is, and none
    # is served.
    assert 1 <= s["corrupt"] <= 3, s
    # The tier served what it could; a refused entry sends the rest of its run to the Hub. Each
    # byte came from one of the two (how much from which depends on where the runs fell).
    from_hub = bytes_served(emulator) - before
    assert s["bytes"] > 0 and from_hub > 0, s
    assert from_hub + s["bytes"] <= 1.1 * SMALL, (from_hub, s)
    # No planted object is left: deleted, then written again from Hub bytes (or not yet).
    settle_fills(b)
    for k, bad in zip(keys, planted):
        try:
            body = s3.get_object(Bucket=garage.bucket, Key=k)["Body"].read()
        except s3.exceptions.NoSuchKey:
            continue
        assert body != bad and len(body) == object_len(k)
    c = node(mount, garage, "garbage")
    assert read_all(c / "garbage.bin")[0] == repo["garbage.bin"]
    assert shared(c)["corrupt"] == 0 and shared(c)["bytes"] > 0


def _fault_mid_read(garage, repo, mount, emulator, name, fault, heal):
    """Node a fills the tier; node b reads from it and the fault strikes a quarter in. b's bytes
    must be right and its time close to a read from the Hub alone (node a's)."""
    prefix = name.split(".")[0]
    a = node(mount, garage, prefix, timeout_ms=300)
    _, hub_time = read_all(a / name)
    settle_fills(a)
    b = node(mount, garage, prefix, timeout_ms=300)
    t0 = time.monotonic()
    with open(b / name, "rb") as f:
        head = f.read(SMALL // 4)
        fault()
        try:
            rest = f.read()
        finally:
            heal()
    elapsed = time.monotonic() - t0
    import hashlib
    assert hashlib.sha256(head + rest).hexdigest() == repo[name]
    s = shared(b)
    assert s["hits"] > 0, s
    # The fault costs each lookup in flight one first-byte or stall timeout (300 ms) before the
    # breaker opens; a lookup waiting out its whole budget instead (10 s) is the regression to
    # catch. 6 s of slack is 20 such timeouts: room for this loaded machine, below that budget.
    assert elapsed < hub_time * 3 + 6, f"{elapsed:.1f}s with the fault, {hub_time:.1f}s from the Hub alone"
    return b, s


def test_a_hung_store_mid_read_costs_a_timeout_not_the_read(garage, repo, mount, emulator):
    b, s = _fault_mid_read(garage, repo, mount, emulator, "hang.bin",
                           lambda: garage.signal_all(signal.SIGSTOP), lambda: garage.signal_all(signal.SIGCONT))
    assert s["errors"] >= 1 and s["errors"] <= 64, s
    assert b.status()["shared_cache"]["breaker_open"] or s["skipped"] > 0


def test_the_bucket_going_away_mid_read_leaves_reads_correct(garage, repo, mount, emulator):
    deny = lambda: garage.cli("bucket", "deny", "--read", "--write", "--owner", garage.bucket, "--key", garage.key_id)
    allow = lambda: garage.cli("bucket", "allow", "--read", "--write", "--owner", garage.bucket, "--key", garage.key_id)
    b, s = _fault_mid_read(garage, repo, mount, emulator, "deny.bin", deny, allow)
    assert s["errors"] >= 1, s


def test_private_bytes_in_the_tier_are_not_served_to_a_token_without_access(garage, repo, mount, emulator, tmp_path):
    # The tier holds big.bin's bytes (the first test filled it) under the prefix "three".
    r = run_mount(REPO, tmp_path / "bob", emulator, token=READ_TOKEN, cache_dir=tmp_path / "bob-cache",
                  args=garage.mount_args("three"), env_extra=garage.env())
    assert r.returncode != 0 and "not found" in (r.stderr.lower()), r.stderr
    hub = mount("hf://", token=READ_TOKEN, args=garage.mount_args("three"), env_extra=garage.env())
    assert not (hub / REPO / "big.bin").exists()
    assert shared(hub)["hits"] == 0


def test_the_store_killed_mid_read_leaves_reads_correct(garage, repo, mount, emulator):
    # Last: the cluster does not come back.
    b, s = _fault_mid_read(garage, repo, mount, emulator, "kill.bin",
                           lambda: garage.signal_all(signal.SIGKILL), lambda: None)
    assert s["errors"] >= 1, s

