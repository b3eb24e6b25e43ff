"""Crash test of the write path: kill -9 of the daemon at random points of a write workload.

Each round runs crash_writer.py (creates, overwrites, appends, `cmd > file` redirects that write
for seconds, renames, deletes, files of tens of MiB and of a few bytes) on a writable mount,
kills the daemon at a random moment, remounts with the same cache directory (the journal
replays), runs `hubfs sync`, and checks with the official client that:

- every file whose last completed operation returned before the kill is on the Hub, byte-exact;
- the one operation in flight at the kill either happened whole or not at all;
- nothing else landed: no empty, partial or stale file, no file that was deleted.

The seed is printed (and can be forced with HUBFS_CRASH_SEED) so a failing round reproduces."""

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crash_lib import kill_daemon
from crash_writer import materialize
from writes_lib import fresh_repo, hub_sync

VENV_PY = sys.executable
WRITER = Path(__file__).parent / "crash_writer.py"
ROUNDS = int(os.environ.get("HUBFS_CRASH_ROUNDS", "12"))
# The whole test stops starting new rounds after this many seconds (once MIN_KILLS ran).
BUDGET_S = 150
MIN_KILLS = min(3, ROUNDS)


def sha_of(desc) -> str:
    return hashlib.sha256(materialize(desc)).hexdigest()


def read_log(path: Path):
    recs = []
    for line in path.read_text().splitlines():
        try:
            recs.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line torn by the kill of the writer
    return recs


def expectations(state, recs, killed_at):
    """(committed, choices, early_errors): the state after every completed operation, the
    acceptable contents per path (a set of sha256 or None for absent), and errors that the
    writer saw before the daemon was killed (each one a bug)."""
    committed = dict(state)
    in_flight = None
    early = []
    for r in recs:
        if r["ev"] == "start":
            in_flight = r
        elif r["ev"] == "done":
            # The writer dies with the daemon, before the unmount: nothing can return later.
            assert r["t"] < killed_at + 0.5, f"an operation returned after the daemon was killed: {r}"
            if r["op"] == "write":
                committed[r["path"]] = r["content"]
            elif r["op"] == "rename":
                committed[r["to"]] = committed.pop(r["path"])
            elif r["op"] == "delete":
                committed.pop(r["path"], None)
            in_flight = None
        elif r["ev"] == "error" and r["t"] < killed_at:
            early.append(r)
    choices = {p: {sha_of(d)} for p, d in committed.items()}
    if in_flight:
        # Either it happened whole, or not at all.
        p = in_flight["path"]
        if in_flight["op"] == "write":
            choices.setdefault(p, {None} if p not in committed else set()).add(sha_of(in_flight["content"]))
        elif in_flight["op"] == "rename":
            to = in_flight["to"]
            moved = sha_of(in_flight["content"])
            choices.setdefault(p, set()).add(None)
            choices[p].add(moved)
            choices.setdefault(to, {None} if to not in committed else set()).add(moved)
        elif in_flight["op"] == "delete":
            choices.setdefault(p, set()).add(None)
    return committed, choices, in_flight, early


def history(recs, path, limit=12):
    """The last operations of the log that touched `path`, for failure messages."""
    out = []
    for i, r in enumerate(recs):
        if path in (r.get("path"), r.get("to")):
            sha = sha_of(r["content"])[:12] if "content" in r else ""
            out.append(f"#{i} {r['ev']} {r['op']} {r.get('kind', '')} {r['path']}"
                       f"{' -> ' + r['to'] if 'to' in r else ''} {sha}")
    return out[-limit:]


def hub_state(api, repo, seen=None):
    """{path: sha256} of what is on the Hub, read with the official client (`seen` gets a short
    description of each file, for failure messages)."""
    import tempfile
    files = sorted(api.list_repo_files(repo))
    files = [f for f in files if f != ".gitattributes"]
    out = {}
    if not files:
        return out
    infos = {i.path: i for i in api.get_paths_info(repo, files)}
    with tempfile.TemporaryDirectory() as d:
        for f in files:
            info = infos[f]
            if info.lfs is not None:
                out[f] = info.lfs.sha256
                if seen is not None:
                    seen[f] = f"LFS {info.size} bytes"
            else:
                p = api.hf_hub_download(repo, f, local_dir=d)
                data = Path(p).read_bytes()
                out[f] = hashlib.sha256(data).hexdigest()
                if seen is not None:
                    seen[f] = f"{len(data)} bytes {data[:60]!r}"
    return out


def mount_state(root: Path):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f == ".gitattributes" and Path(dirpath) == root:
                continue
            full = Path(dirpath) / f
            out[str(full.relative_to(root))] = hashlib.sha256(full.read_bytes()).hexdigest()
    return out


@pytest.mark.timeout(600)
def test_kill_9_at_random_points_loses_nothing_and_lands_nothing_partial(api, mount, tmp_path):
    seed = int(os.environ.get("HUBFS_CRASH_SEED", random.randrange(1 << 31)))
    print(f"crash test seed: HUBFS_CRASH_SEED={seed}")
    rng = random.Random(seed)
    repo = fresh_repo(api)
    cache = tmp_path / "cache"
    state = {}  # what the Hub holds (and the mount shows) at the start of a round
    started = time.monotonic()
    m = mount(repo, cache_dir=cache, name="r0")
    kills = 0
    for rnd in range(ROUNDS):
        # At least MIN_KILLS rounds however slow the machine (the pytest timeout still bounds
        # the test); more while the time budget lasts.
        if rnd >= MIN_KILLS and time.monotonic() - started > BUDGET_S:
            break
        state_file = tmp_path / f"state{rnd}.json"
        state_file.write_text(json.dumps(state))
        log_path = tmp_path / f"log{rnd}.jsonl"
        wseed = rng.randrange(1 << 31)
        writer = subprocess.Popen([VENV_PY, str(WRITER), str(m.path), str(state_file), str(log_path), str(wseed)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(rng.uniform(0.5, 6.0))
        early_exit = writer.poll()
        killed_at = time.monotonic()
        kill_daemon(m.path, writers=[writer])
        kills += 1
        out = writer.stdout.read().decode(errors="replace")
        recs = read_log(log_path)
        committed, choices, in_flight, early = expectations(state, recs, killed_at)
        brief = in_flight and {k: v for k, v in in_flight.items() if k != "content"}
        ctx = f"seed {seed} round {rnd} (writer seed {wseed}); in flight: {brief}; writer output: {out[-2000:]}"
        assert early_exit is None, f"the writer stopped before the kill: {early_exit}; {ctx}"
        assert not early, f"operations failed before the kill: {early}; {ctx}"
        done = sum(r["ev"] == "done" for r in recs)

        # The journal as the crash left it (the remount compacts it), for diagnosis.
        for i, j in enumerate(sorted(cache.glob("staging/*/journal.jsonl"))):
            shutil.copy(j, tmp_path / f"journal-round{rnd}-{i}.jsonl")
        ctx += f"; journal before replay: {tmp_path}/journal-round{rnd}-*.jsonl"
        m = mount(repo, cache_dir=cache, name=f"r{rnd + 1}")
        r = hub_sync(m, timeout=120)
        # A version whose writer had not closed it at the kill is kept held, never committed
        # (SEMANTICS.md, crash recovery): sync names it. Only the write in flight may be held.
        held = re.findall(r"^\s*(\S+): it was still open for writing", r.stderr, re.M)
        assert r.returncode == 0 or (held and r.returncode == 1), f"hubfs sync after remount: {r.stdout}{r.stderr}; {ctx}"
        assert all(in_flight and in_flight["op"] == "write" and h == in_flight["path"] for h in held), \
            f"held versions {held} but only the write in flight may be: {r.stderr}; {ctx}"
        seen = {}
        hub = hub_state(api, repo, seen)
        for p, sha in hub.items():
            assert p in choices, f"{p} ({seen[p]}) landed but no completed operation left it there; {ctx}"
            assert sha in choices[p], (
                f"{p} on the Hub ({seen[p]}, {sha[:12]}) is not what the writers left; its history: "
                f"{history(recs, p)}; {ctx}")
        for p, allowed in choices.items():
            if None not in allowed:
                assert p in hub, (
                    f"{p}: its close returned before the kill but it is not on the Hub; its history: "
                    f"{history(recs, p)}; {ctx}")
        for h in held:
            # The held (unfinished) version stays visible in the mount until written again or
            # deleted; the workload goes on from the Hub's version.
            if h in hub:
                version = committed[h] if h in committed and sha_of(committed[h]) == hub[h] else in_flight["content"]
                (m / h).write_bytes(materialize(version))
            else:
                os.unlink(m / h)
        if held:
            r = hub_sync(m, timeout=120)
            assert r.returncode == 0, f"hubfs sync after rewriting the held files: {r.stdout}{r.stderr}; {ctx}"
            assert hub_state(api, repo) == hub, f"rewriting a held file with its Hub version changed the Hub; {ctx}"
        # The remounted mount shows what the Hub holds.
        shown = mount_state(m.path)
        diff = {p: (shown.get(p), hub.get(p)) for p in set(shown) | set(hub) if shown.get(p) != hub.get(p)}
        assert not diff, f"mount and Hub differ after sync (path: (mount, Hub)): {diff}; {ctx}"
        # Next round starts from what actually landed (the in-flight operation decided).
        state = {}
        for p, sha in hub.items():
            if p in committed and sha_of(committed[p]) == sha:
                state[p] = committed[p]
            else:
                state[p] = in_flight["content"]
        print(f"round {rnd}: {done} operations completed, in flight {in_flight and in_flight['op']} "
              f"{in_flight and in_flight['path']}, {len(hub)} files on the Hub")
    assert kills >= MIN_KILLS, f"only {kills} rounds ran"
