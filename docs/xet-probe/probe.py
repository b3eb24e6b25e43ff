"""Research probe for docs/xet-plan.md (not part of the test suite; run by hand).

What does the official hf_xet (PyPI wheel) send to a plain-http loopback Hub + CAS?

A stdlib fake answers the token routes and the CAS routes just enough for hf_xet to finish an
upload and a download, and records every request (method, path, notable headers). No real
format work: xorbs are stored as received; the reconstruction for a one-xorb file is built by
walking the xorb's chunk headers (8 bytes each: version, 3-byte compressed length, scheme,
3-byte uncompressed length) up to the footer ident b"XETBLOB".
"""

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = []
XORBS = {}  # xorb hash hex -> bytes
FILES = {}  # file hash hex -> (xorb hash, n_chunks, chunk_section_len, size)
STATE = {"token_n": 0, "expired_fetch_once": os.environ.get("PROBE_403_ONCE") == "1", "fetches": 0,
         "grant": os.environ.get("PROBE_GRANT") == "1", "recon_v": os.environ.get("PROBE_RECON", "2")}
TOKEN_LIFETIME = int(os.environ.get("PROBE_TOKEN_LIFETIME", "3600"))


def walk_chunks(data):
    off, n, unpacked = 0, 0, 0
    while off + 8 <= len(data) and data[off:off + 7] != b"XETBLOB":
        clen = int.from_bytes(data[off + 1:off + 4], "little")
        ulen = int.from_bytes(data[off + 5:off + 8], "little")
        off += 8 + clen
        n += 1
        unpacked += ulen
    return n, off, unpacked


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def rec(self, body_len=0):
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() in ("range", "content-type", "user-agent", "x-xet-session-id", "accept",
                                 "content-length", "x-request-id")}
        auth = self.headers.get("Authorization")
        hdrs["authorization"] = (auth.split(" ")[0] + " <" + auth.split(" ")[1][:6] + "…>") if auth else None
        LOG.append({"t": round(time.time(), 3), "m": self.command, "p": self.path, "h": hdrs, "body": body_len})

    def send(self, code, body=b"", ctype="application/json", extra=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            return self.rfile.read(n)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def token(self):
        STATE["token_n"] += 1
        exp = int(time.time()) + TOKEN_LIFETIME
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        body = {"casUrl": base, "accessToken": f"cas{STATE['token_n']}", "exp": exp}
        self.send(200, body, extra={"X-Xet-Cas-Url": base, "X-Xet-Access-Token": body["accessToken"],
                                    "X-Xet-Token-Expiration": str(exp)})

    def do_GET(self):
        self.rec()
        p = self.path
        if "/xet-write-token" in p or "/xet-read-token" in p:
            return self.token()
        if p.startswith("/v1/chunks/"):
            return self.send(404, {"error": "not found"})
        if p.startswith("/v2/reconstructions/") or p.startswith("/v1/reconstructions/"):
            v = p[2]
            if v != STATE["recon_v"]:
                return self.send(404, {"error": "version"})
            fh = p.rsplit("/", 1)[1]
            if fh not in FILES:
                return self.send(404, {"error": "no file"})
            xh, n, clen, size = FILES[fh]
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            term = {"hash": xh, "unpacked_length": size, "range": {"start": 0, "end": n}}
            if v == "2":
                body = {"offset_into_first_range": 0, "terms": [term],
                        "xorbs": {xh: [{"url": f"{base}/xorb/{xh}?sig=1",
                                        "ranges": [{"chunks": {"start": 0, "end": n},
                                                    "bytes": {"start": 0, "end": clen - 1}}]}]}}
            else:
                body = {"offset_into_first_range": 0, "terms": [term],
                        "fetch_info": {xh: [{"range": {"start": 0, "end": n}, "url": f"{base}/xorb/{xh}?sig=1",
                                             "url_range": {"start": 0, "end": clen - 1}}]}}
            return self.send(200, body)
        if p.startswith("/xorb/"):
            STATE["fetches"] += 1
            if STATE["expired_fetch_once"]:
                STATE["expired_fetch_once"] = False
                return self.send(403, b"expired", "text/plain")
            xh = p.split("/")[2].split("?")[0]
            data = XORBS[xh]
            r = self.headers.get("Range", "")
            a, b = r[len("bytes="):].split("-")
            part = data[int(a):int(b) + 1]
            return self.send(206, part, "application/octet-stream",
                             {"Content-Range": f"bytes {a}-{b}/{len(data)}"})
        return self.send(404, {"error": "unrouted"})

    def do_HEAD(self):
        return self.do_GET()

    def do_POST(self):
        data = self.body()
        self.rec(len(data))
        p = self.path
        if p.startswith("/v1/xorb-grants/"):
            if not STATE["grant"]:
                return self.send(404, {"error": "no grants"})
            xh = p.rsplit("/", 1)[1]
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            return self.send(201, {"id": "g-" + xh[:8], "method": "PUT", "url": f"{base}/upload/{xh}",
                                   "headers": {"x-probe": "1"}})
        if p.startswith("/v1/xorb-commits/"):
            return self.send(200, {})
        if p.startswith("/v1/xorbs/"):
            xh = p.rsplit("/", 1)[1]
            XORBS[xh] = data
            return self.send(200, {"was_inserted": True})
        if p.startswith("/v2/shards") or p.startswith("/v1/shards"):
            SHARDS.append(data)
            if p.startswith("/v2"):
                return self.send(200, b'{"type":"result"}\n', "application/x-ndjson")
            return self.send(200, {"result": 1})
        return self.send(404, {"error": "unrouted"})

    def do_PUT(self):
        data = self.body()
        self.rec(len(data))
        if self.path.startswith("/upload/"):
            XORBS[self.path.split("/")[2]] = data
            return self.send(200, b"")
        return self.send(404, {"error": "unrouted"})


SHARDS = []


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    import hf_xet

    size = int(os.environ.get("PROBE_SIZE", str(3 * 1024 * 1024)))
    payload = os.urandom(size)
    work = tempfile.mkdtemp(prefix="xetprobe-")
    src = os.path.join(work, "src.bin")
    with open(src, "wb") as f:
        f.write(payload)
    sess = hf_xet.XetSession()
    hdrs = {"Authorization": "Bearer hf_fake_probe", "user-agent": "probe"}
    with sess.new_upload_commit(token_refresh_url=f"{base}/api/models/ns/repo/xet-write-token/main",
                                token_refresh_headers=hdrs, custom_headers={"user-agent": "probe"}) as commit:
        policy = hf_xet.SKIP_SHA256 if os.environ.get("PROBE_SKIP_SHA") == "1" else hf_xet.COMPUTE_SHA256
        h = commit.start_upload_file(src, sha256=policy)
    info = h.result().xet_info
    print("UPLOAD RESULT", info.hash, info.file_size, info.sha256)
    # Where does the Hub learn sha256 -> xet hash? Look for both hashes in the uploaded shard, in the
    # 8-byte-word reordered form MerkleHash::hex() uses.
    shard = b"".join(SHARDS)

    def reordered(hexstr):
        b = bytes.fromhex(hexstr)
        return b"".join(b[k:k + 8][::-1] for k in range(0, 32, 8))

    print("SHARD has file hash:", reordered(info.hash) in shard,
          "has sha256:", bool(info.sha256) and reordered(info.sha256) in shard)
    # register the file for the fake reconstruction: the single uploaded xorb
    assert len(XORBS) == 1, list(XORBS)
    xh, data = next(iter(XORBS.items()))
    n, clen, unpacked = walk_chunks(data)
    assert unpacked == size, (unpacked, size)
    FILES[info.hash] = (xh, n, clen, size)
    print("XORB", xh, "bytes", len(data), "chunks", n, "chunk section", clen)
    mark = len(LOG)
    dst = os.path.join(work, "dst.bin")
    with sess.new_file_download_group(token_refresh_url=f"{base}/api/models/ns/repo/xet-read-token/main",
                                      token_refresh_headers=hdrs) as group:
        group.start_download_file(hf_xet.XetFileInfo(info.hash, size), dst)
    ok = open(dst, "rb").read() == payload
    print("DOWNLOAD byte-exact:", ok, "xorb fetches:", STATE["fetches"])
    for i, e in enumerate(LOG):
        if i == mark:
            print("---- download ----")
        print(json.dumps(e))
    srv.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
