"""A real Garage cluster for the shared-cache tests and benchmark: three nodes on loopback
ports, replication factor 3, sqlite metadata, one shared rpc_secret, then `node connect`,
`layout assign` / `layout apply`, `key create`, `bucket create`, `bucket allow`. The binary is
$GARAGE, else $HUBFS_FS_TOOLS/bin/garage (scripts/lib/setup.sh `setup_garage` installs it)."""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("HUBFS_FS_TOOLS", ROOT / ".tools"))
GARAGE = os.environ.get("GARAGE", str(TOOLS / "bin" / "garage"))
REGION = "garage"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NodeExited(RuntimeError):
    pass


class Garage:
    def __init__(self, workdir: Path, nodes: int = 3):
        self.workdir = workdir
        self.secret = secrets.token_hex(32)
        self.nodes = []
        for i in range(nodes):
            d = workdir / f"node{i}"
            (d / "meta").mkdir(parents=True, exist_ok=True)
            (d / "data").mkdir(parents=True, exist_ok=True)
            self.nodes.append({"dir": d, "rpc": free_port(), "s3": free_port(), "admin": free_port(),
                               "conf": d / "garage.toml", "proc": None})
        self.key_id = self.secret_key = None
        self.bucket = "hubfs-cache"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.nodes[0]['s3']}"

    def _write_conf(self, n):
        n["conf"].write_text(f"""
metadata_dir = "{n['dir'] / 'meta'}"
data_dir = "{n['dir'] / 'data'}"
db_engine = "sqlite"
replication_factor = {len(self.nodes)}
compression_level = "none"
rpc_bind_addr = "127.0.0.1:{n['rpc']}"
rpc_public_addr = "127.0.0.1:{n['rpc']}"
rpc_secret = "{self.secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{n['s3']}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{n['admin']}"
""")
        os.chmod(n["conf"], 0o600)

    def cli(self, *args, node=0, check=True, timeout=30):
        r = subprocess.run([GARAGE, "-c", str(self.nodes[node]["conf"]), *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"garage {' '.join(args)}: {r.stderr or r.stdout}")
        return r.stdout

    def _check_alive(self):
        for i, n in enumerate(self.nodes):
            if n["proc"] is not None and n["proc"].poll() is not None:
                log = (n["dir"] / "garage.log").read_text(errors="replace")[-2000:]
                raise NodeExited(f"garage node {i} exited ({n['proc'].returncode}): {log}")

    def _retry(self, *args, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                return self.cli(*args)
            except RuntimeError:
                self._check_alive()
                if time.time() > deadline:
                    raise
                time.sleep(0.3)

    def start(self):
        """Starts the cluster. Its ports were free when picked, but another process on the machine
        may bind one first: a node that exits at start is retried on fresh ports (twice)."""
        for attempt in range(3):
            try:
                return self._start()
            except NodeExited:
                self.stop()
                if attempt == 2:
                    raise
                for n in self.nodes:
                    # A clean slate: no half-made layout from the failed attempt.
                    for sub in ("meta", "data"):
                        shutil.rmtree(n["dir"] / sub, ignore_errors=True)
                        (n["dir"] / sub).mkdir(parents=True)
                    n.update(rpc=free_port(), s3=free_port(), admin=free_port())

    def _start(self):
        for n in self.nodes:
            self._write_conf(n)
            log = open(n["dir"] / "garage.log", "ab")
            n["proc"] = subprocess.Popen([GARAGE, "-c", str(n["conf"]), "server"], stdout=log, stderr=log,
                                         env={**os.environ, "RUST_LOG": "garage=warn"})
        ids = [self.node_id(i) for i in range(len(self.nodes))]
        for full in ids[1:]:
            self._retry("node", "connect", full)
        for full in ids:
            self._retry("layout", "assign", "-z", "dc1", "-c", "1G", full.split("@")[0])
        self._retry("layout", "apply", "--version", "1")
        out = self._retry("key", "create", "hubfs-test-key")
        self.key_id = re.search(r"Key ID:\s*(\S+)", out).group(1)
        self.secret_key = re.search(r"Secret key:\s*(\S+)", out).group(1)
        self._retry("bucket", "create", self.bucket)
        self._retry("bucket", "allow", "--read", "--write", "--owner", self.bucket, "--key", self.key_id)
        # The S3 API answers once the layout reached every node.
        deadline = time.time() + 30
        s3 = self.s3()
        while True:
            try:
                s3.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
                break
            except Exception:
                self._check_alive()
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        return self

    def node_id(self, i):
        deadline = time.time() + 30
        while True:
            try:
                return self.cli("node", "id", "-q", node=i).strip()
            except RuntimeError:
                self._check_alive()
                if time.time() > deadline:
                    raise
                time.sleep(0.3)

    def s3(self):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=self.key_id, aws_secret_access_key=self.secret_key,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def env(self):
        """The environment a hubfs node gets: the usual AWS variables."""
        return {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def mount_args(self, prefix, timeout_ms=None, endpoint=None):
        args = ["--shared-cache", f"s3://{self.bucket}/{prefix}", "--shared-cache-endpoint", endpoint or self.endpoint,
                "--shared-cache-region", REGION]
        if timeout_ms is not None:
            args += ["--shared-cache-timeout", str(timeout_ms)]
        return args

    def signal_all(self, sig):
        for n in self.nodes:
            if n["proc"] and n["proc"].poll() is None:
                n["proc"].send_signal(sig)

    def stop(self):
        self.signal_all(signal.SIGCONT)
        for n in self.nodes:
            p = n["proc"]
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
            n["proc"] = None
