"""The workload of test_write_crash.py, run as its own process so the test can kill the hubfs
daemon under it at any moment.

    python crash_writer.py MOUNT STATE_JSON LOG SEED

It applies random operations (seeded) to MOUNT, one at a time, forever (until the mount dies
or it is killed): small and large creates and overwrites, appends, `cmd > file` shell
redirects that write over several seconds, renames, deletes. Before each operation it appends a
`start` record to LOG, and a `done` record once the operation returned (close returned, rename
returned...), each line fsync'd, so the test knows exactly which operations completed before the
kill and which one was in flight. Contents are described, not stored: `{"b64": ...}` for small
files, `{"gen": [seed, size]}` for large ones (bytes = det_bytes(size, seed)).

STATE_JSON is {path: descriptor} of what the mount holds when the writer starts."""

import base64
import json
import os
import random
import subprocess
import sys
import time

MIB = 1 << 20
TOP = [f"f{i}" for i in range(6)]
SUB = [f"d/g{i}" for i in range(4)]
NAMES = TOP + SUB


def det_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def materialize(desc) -> bytes:
    if "b64" in desc:
        return base64.b64decode(desc["b64"])
    seed, size = desc["gen"]
    return det_bytes(size, seed)


def lit(data: bytes):
    return {"b64": base64.b64encode(data).decode()}


class Log:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def rec(self, **kw):
        kw["t"] = time.monotonic()
        os.write(self.fd, (json.dumps(kw) + "\n").encode())
        os.fsync(self.fd)


def write_file(path, data: bytes, chunk=MIB, fsync=False):
    """open(O_TRUNC) + writes in chunks + close: the close's return is what counts."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for off in range(0, len(data), chunk):
            os.write(fd, data[off:off + chunk])
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def main():
    mount, state_path, log_path, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open(state_path) as f:
        state = json.load(f)
    rng = random.Random(seed)
    log = Log(log_path)
    p = lambda name: os.path.join(mount, name)  # noqa: E731
    n = 0
    while True:
        n += 1
        name = rng.choice(NAMES)
        if "/" in name:
            os.makedirs(p("d"), exist_ok=True)
        kind = rng.choices(["small", "big", "append", "redirect", "rename", "delete", "fsync"],
                           weights=[30, 8, 12, 10, 14, 12, 3])[0]
        if kind in ("append", "rename", "delete") and name not in state:
            kind = "small"
        if kind == "append" and "b64" not in state[name]:
            kind = "small"
        try:
            if kind in ("small", "fsync"):
                data = rng.randbytes(rng.choice([0, 1, 17, 100, 4096, rng.randrange(1, 300_000)]))
                desc = lit(data)
                log.rec(ev="start", op="write", kind=kind, path=name, content=desc)
                write_file(p(name), data, chunk=rng.choice([4096, 65536, MIB]), fsync=kind == "fsync")
                state[name] = desc
                log.rec(ev="done", op="write", path=name, content=desc)
            elif kind == "big":
                size = rng.randrange(8 * MIB, 40 * MIB)
                desc = {"gen": [rng.randrange(1 << 30), size]}
                data = materialize(desc)
                log.rec(ev="start", op="write", kind=kind, path=name, content=desc)
                write_file(p(name), data)
                state[name] = desc
                log.rec(ev="done", op="write", path=name, content=desc)
            elif kind == "append":
                extra = rng.randbytes(rng.randrange(1, 5000))
                desc = lit(materialize(state[name]) + extra)
                log.rec(ev="start", op="write", kind=kind, path=name, content=desc)
                with open(p(name), "ab") as f:
                    f.write(extra)
                state[name] = desc
                log.rec(ev="done", op="write", path=name, content=desc)
            elif kind == "redirect":
                # The shell opens the file, dup2s it onto stdout and closes the original (a
                # FLUSH), then the command writes for a while: only the last close counts.
                delay = rng.choice([0.3, 0.8, 1.5, 3.0])
                tag = f"{seed}-{n}"
                data = f"start {tag}\nend {tag}\n".encode()
                desc = lit(data)
                log.rec(ev="start", op="write", kind=kind, path=name, content=desc)
                r = subprocess.run(["bash", "-c", f"(echo start {tag}; sleep {delay}; echo end {tag}) > {p(name)!r}"],
                                   capture_output=True, timeout=60)
                if r.returncode != 0:
                    raise OSError(f"redirect exited {r.returncode}: {r.stderr!r}")
                state[name] = desc
                log.rec(ev="done", op="write", path=name, content=desc)
            elif kind == "rename":
                to = rng.choice([x for x in NAMES if x != name])
                if "/" in to:
                    os.makedirs(p("d"), exist_ok=True)
                log.rec(ev="start", op="rename", path=name, to=to, content=state[name])
                os.rename(p(name), p(to))
                state[to] = state.pop(name)
                log.rec(ev="done", op="rename", path=name, to=to)
            elif kind == "delete":
                log.rec(ev="start", op="delete", path=name)
                os.remove(p(name))
                del state[name]
                log.rec(ev="done", op="delete", path=name)
        except Exception as e:  # the mount died (or broke): the test judges by the time
            log.rec(ev="error", op=kind, path=name, error=repr(e))
            return 1


if __name__ == "__main__":
    sys.exit(main())
