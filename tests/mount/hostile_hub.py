"""A Hub that lies: a small stdlib HTTP server answering the routes a hubfs mount calls
(repo info, tree pages, paths-info, resolve) in ways the real Hub never should, to prove that
hubfs bounds what a broken or hostile server can do to its readers and its memory.

Each repo `hostile/MODE` behaves per MODE:

- `loop`: tree pages whose `Link: next` goes first -> A -> B -> A -> ...
- `endless`: tree pages that never end, 1000 new names each.
- `bigdir-N`: a directory of N pages of 1000 files that does end (for memory measurements).
- `bigpage`: a tree page of 400 MiB, streamed (never built in memory), chunked (no length).
- `biginfo`: a repo-info answer announcing 400 MiB, streamed.
- `names`: tree and siblings full of hostile names (`.`, `..`, `.git`, NUL, 300 bytes,
  empty segments, absolute paths, a `/` inside a name), next to one good file.
- `lies`: files whose listed size or hash does not match the bytes served.
- `redirect`: resolve redirects to `file://`, `ftp://`, and to another host (a second
  listener on another port, which records whether it ever saw an `Authorization` header).
- `slow`: tree and resolve requests accepted, then silence (bounded: 30 s at most).

Everything listens on 127.0.0.1, port 0. Threads are bounded by a semaphore; a slow answer
never waits more than `SLOW_MAX` seconds.
"""

import hashlib
import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHA = "c0ffee" + "0" * 34
SLOW_MAX = 30
MAX_THREADS = 64
PAGE = 1000
GOOD = b"good bytes\n"
# Content served for the `lies` files, and what the tree claims about it.
LIE_BYTES = b"what the server sends instead" * 100


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def file_entry(path, data=None, size=None, oid=None, lfs_sha=None):
    data = GOOD if data is None else data
    e = {"type": "file", "oid": oid or git_oid(data), "size": len(data) if size is None else size, "path": path}
    if lfs_sha is not None:
        e["lfs"] = {"oid": lfs_sha, "size": e["size"], "pointerSize": 130}
    return e


def dir_entry(path):
    return {"type": "directory", "oid": "d" * 40, "size": 0, "path": path}


HOSTILE_NAMES = [".", "..", ".git", "a\u0000b", "x" * 300, "a//b", "/abs", "d/e", "", "..\\up", "sub/../../escape"]


def names_tree(path):
    """The `names` repo: one good file and a good dir, plus every hostile name we know."""
    if path == "":
        good = [file_entry("ok.txt"), dir_entry("good-dir")]
        return good + [file_entry(n) for n in HOSTILE_NAMES] + [dir_entry(".git"), dir_entry("..")]
    if path == "good-dir":
        # Entries outside the directory asked for, and a child's child in a flat listing.
        return [file_entry("good-dir/inner.txt"), file_entry("elsewhere.txt"), file_entry("good-dir/x/y.txt")]
    return None


LIES = {
    # Listed size differs from the bytes served.
    "size-lie.bin": dict(size=len(LIE_BYTES) * 2),
    "short-lie.bin": dict(size=1000),
    # git blob id of other bytes.
    "oid-lie.txt": dict(oid=git_oid(b"something else")),
    # LFS sha256 of other bytes.
    "sha-lie.bin": dict(lfs_sha=hashlib.sha256(b"other content").hexdigest()),
}


def lies_tree(path):
    if path != "":
        return None
    return [file_entry(name, data=LIE_BYTES, **kw) for name, kw in LIES.items()]


REDIRECTS = {"to-file.bin": "file:///etc/passwd", "to-ftp.bin": "ftp://127.0.0.1/x.bin"}


class State:
    """What the servers saw, for the tests to check."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tree_pages = {}  # mode -> pages served
        self.other_host_auth = []  # Authorization headers seen by the other host
        self.other_host_requests = 0
        self.resolves = {}  # (mode, path) -> resolve requests (GET and HEAD)

    def count_page(self, mode):
        with self.lock:
            self.tree_pages[mode] = self.tree_pages.get(mode, 0) + 1

    def count_resolve(self, mode, path):
        with self.lock:
            self.resolves[(mode, path)] = self.resolves.get((mode, path), 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HostileHub/1"

    def log_message(self, *args):
        pass

    # ----- plumbing -----

    def send_json(self, obj, status=200, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def not_found(self, code="EntryNotFound"):
        self.send_json({"error": "not found"}, status=404, headers=[("X-Error-Code", code)])

    def stream_huge(self, prefix: bytes, item: bytes, total: int, chunked=False):
        """A JSON array `prefix` + items... of about `total` bytes, generated as it is sent;
        `chunked`: without a Content-Length, so only counting the bytes can stop a reader."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(total))
        self.end_headers()
        chunk = (item + b",") * max(1, (1 << 20) // (len(item) + 1))

        def write(data):
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)

        sent = 0
        try:
            write(prefix)
            sent += len(prefix)
            while sent + len(chunk) < total:
                write(chunk)
                sent += len(chunk)
            write(b" " * (total - sent - 1) + b"]")
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def silence(self):
        """Accept, then say nothing (until the client leaves or SLOW_MAX passes)."""
        deadline = time.time() + SLOW_MAX
        self.connection.settimeout(0.2)
        while time.time() < deadline:
            try:
                if self.connection.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        self.close_connection = True

    # ----- routes -----

    def do_GET(self):
        with self.server.slots:
            self.route()

    def do_HEAD(self):
        with self.server.slots:
            self.route()

    def do_POST(self):
        with self.server.slots:
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            m = re.match(r"^/api/models/hostile/([\w-]+)/paths-info/", self.path)
            if not m:
                return self.not_found("RepoNotFound")
            mode = m.group(1)
            tree = TREES.get(mode, lambda p: None)("") or []
            want = set(form.get("paths", []))
            # Lies: answers naming paths that were not asked for, and hostile ones.
            extra = [file_entry("not-asked.txt"), file_entry("../evil")]
            self.send_json([e for e in tree if e["path"] in want] + extra)

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        query = urllib.parse.parse_qs(url.query)
        if self.server.is_other_host:
            return self.other_host()
        m = re.match(r"^/api/models/hostile/([\w-]+)(?:/revision/[^/]+)?$", path)
        if m:
            return self.repo_info(m.group(1))
        m = re.match(r"^/api/models/hostile/([\w-]+)/tree/([^/]+)/?(.*)$", path)
        if m:
            return self.tree(m.group(1), m.group(3).strip("/"), query)
        m = re.match(r"^/hostile/([\w-]+)/resolve/([^/]+)/(.+)$", path)
        if m:
            return self.resolve(m.group(1), m.group(3))
        self.not_found("RepoNotFound")

    def repo_info(self, mode):
        if mode == "biginfo":
            item = json.dumps({"rfilename": "f" * 100, "size": 1, "blobId": "0" * 40}).encode()
            prefix = b'{"id": "hostile/biginfo", "sha": "%s", "private": false, "siblings": [' % SHA.encode()
            # The array closes but the object does not: the client must refuse long before.
            return self.stream_huge(prefix, item, 400 << 20)
        siblings = []
        tree = TREES.get(mode)
        if tree:
            for e in tree("") or []:
                if e["type"] == "file":
                    s = {"rfilename": e["path"], "size": e["size"], "blobId": e["oid"]}
                    if "lfs" in e:
                        s["lfs"] = {"sha256": e["lfs"]["oid"], "size": e["size"], "pointerSize": 130}
                    siblings.append(s)
        if mode == "names":
            siblings.append({"rfilename": "../../etc/passwd", "size": 1, "blobId": "0" * 40})
        self.send_json({
            "_id": "x", "id": f"hostile/{mode}", "sha": SHA, "private": False,
            "lastModified": "2024-01-01T00:00:00.000Z", "siblings": siblings,
        })

    def page_url(self, mode, path, recursive, cursor):
        base = self.server.url
        q = urllib.parse.urlencode({"recursive": recursive, "expand": "false", "cursor": cursor})
        sub = f"/{path}" if path else ""
        return f"{base}/api/models/hostile/{mode}/tree/{SHA}{sub}?{q}"

    def tree(self, mode, path, query):
        self.server.state.count_page(mode)
        recursive = query.get("recursive", ["false"])[0]
        cursor = query.get("cursor", [None])[0]
        if mode == "slow":
            return self.silence()
        if mode == "loop":
            nxt = {None: "A", "A": "B", "B": "A"}[cursor]
            link = f'<{self.page_url(mode, path, recursive, nxt)}>; rel="next"'
            prefix = f"{path}/" if path else ""
            return self.send_json([file_entry(f"{prefix}loop-{cursor}.txt")], headers=[("Link", link)])
        if mode == "endless":
            n = int(cursor or 0)
            link = f'<{self.page_url(mode, path, recursive, n + 1)}>; rel="next"'
            prefix = f"{path}/" if path else ""
            page = [file_entry(f"{prefix}p{n:07d}-{i:04d}-" + "n" * 40) for i in range(PAGE)]
            return self.send_json(page, headers=[("Link", link)])
        m = re.match(r"^bigdir-(\d+)$", mode)
        if m:
            # A real (if huge) directory: N pages of 1000 files, then the end.
            n, last = int(cursor or 0), int(m.group(1)) - 1
            headers = []
            if n < last:
                headers = [("Link", f'<{self.page_url(mode, path, recursive, n + 1)}>; rel="next"')]
            prefix = f"{path}/" if path else ""
            page = [file_entry(f"{prefix}p{n:07d}-{i:04d}-" + "n" * 40) for i in range(PAGE)]
            return self.send_json(page, headers=headers)
        if mode == "bigpage":
            item = json.dumps(file_entry("f" * 200)).encode()
            return self.stream_huge(b"[", item, 400 << 20, chunked=True)
        tree = TREES.get(mode)
        entries = tree(path) if tree else None
        if entries is None:
            return self.not_found()
        if recursive == "true" and mode == "names":
            # The same lies, as a recursive listing: there `d/e` would be a real path.
            entries = [e for e in entries if e["path"] != "d/e"] + [file_entry("good-dir/inner.txt")]
        self.send_json(entries)

    def resolve(self, mode, path):
        self.server.state.count_resolve(mode, path)
        if mode == "slow":
            return self.silence()
        if mode == "redirect":
            if path in REDIRECTS:
                return self.redirect(REDIRECTS[path])
            if path == "to-other-host.txt":
                return self.redirect(f"{self.server.other_url}/blob/{path}")
        if mode == "lies" and path in LIES:
            return self.serve_bytes(LIE_BYTES)
        if mode == "names" and path in ("ok.txt", "good-dir/inner.txt"):
            return self.serve_bytes(GOOD)
        self.not_found()

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("X-Repo-Commit", SHA)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def serve_bytes(self, data):
        rng = self.headers.get("Range")
        status, body, extra = 200, data, []
        m = re.match(r"bytes=(\d+)-(\d*)", rng or "")
        if m:
            a = int(m.group(1))
            b = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            if a >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status, body = 206, data[a:b + 1]
            extra = [("Content-Range", f"bytes {a}-{b}/{len(data)}")]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Repo-Commit", SHA)
        self.send_header("ETag", f'"{git_oid(data)}"')
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def other_host(self):
        st = self.server.state
        with st.lock:
            st.other_host_requests += 1
            if self.headers.get("Authorization"):
                st.other_host_auth.append(self.headers.get("Authorization"))
        self.serve_bytes(GOOD)


TREES = {
    "names": names_tree,
    "lies": lies_tree,
    "redirect": lambda p: [file_entry(n) for n in [*REDIRECTS, "to-other-host.txt"]] if p == "" else None,
    # Only its siblings are ever seen: tree and resolve requests get silence.
    "slow": lambda p: [file_entry("stalled.bin")] if p == "" else None,
}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HostileHub:
    """The hostile Hub and its "other host", started on 127.0.0.1 in background threads."""

    def __init__(self):
        self.state = State()
        slots = threading.BoundedSemaphore(MAX_THREADS)
        self.main = Server(("127.0.0.1", 0), Handler)
        self.other = Server(("127.0.0.1", 0), Handler)
        for srv, other in ((self.main, False), (self.other, True)):
            srv.state = self.state
            srv.slots = slots
            srv.is_other_host = other
        self.url = f"http://127.0.0.1:{self.main.server_address[1]}"
        # "localhost", not 127.0.0.1: another host name as well as another port.
        self.other_url = f"http://localhost:{self.other.server_address[1]}"
        self.main.url = self.other.url = self.url
        self.main.other_url = self.other.other_url = self.other_url
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self.main, self.other)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        for s in (self.main, self.other):
            s.shutdown()
            s.server_close()


if __name__ == "__main__":
    hub = HostileHub().start()
    print(f"hostile hub on {hub.url} (other host {hub.other_url})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        hub.stop()
