"""Writes (the benchmark issue 5 asks for): `cp` into a writable hubfs branch mount, timed until
everything has landed on the Hub (`hubfs sync` returns), against huggingface_hub's `upload_file`
/ `upload_folder` of the same data into an equally empty repo:

- one 1 GiB file (the seeded LFS file's local copy): hashing, the LFS batch API, multipart;
- 1,000 small text files of 1-8 KiB in 40 nested folders: regular files inlined in commits,
  where batching decides the time, so the commits each contender made are counted with the
  official client (`list_repo_commits`).

Writing would change the seeded repos every other workload reads, so this workload runs its own
emulators on empty data directories (removed afterwards), shaped like the shared ones. The
emulator throttles downloads only: uploads run at loopback speed on both, and shaping adds its
20 ms per response, which matters where requests are many.

Every upload is checked on the Hub with the official client before its time counts: the big
file's LFS sha256 and size, and the path and git blob id of every small file, against the local
data."""

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .contenders import HF, HUBFS_NAME, peer_python
from .emulator import USER, WRITE_TOKEN, Emulator
from .results import Figure, Section, attempt
from .seed import LFS_FILES
from .util import GIB, KIB, MIB, BenchError, drop_caches, log, run

# Folders x subfolders x files: 1,000 small files, the "cp -r of a project folder" case.
SMALL_TREE = (10, 4, 25)
SMALL_SIZES = (1 * KIB, 8 * KIB)
# Generous for 1 GiB on a busy machine; a stuck upload becomes the cell's error.
LAND_TIMEOUT_S = 300
# hubfs commits at most ~100 files at once and after a quiet period: 1,000 files make about 10
# commits; one per file (what HfFileSystem does) would be 1,000.
MAX_SMALL_COMMITS = 20
# Which data is measured on which emulator. The 1 GiB upload is not throttled, so it differs
# between the two by a few round trips only: it runs once, on the realistic (shaped)
# connection. The small files, where round trips add up, run on both.
NETWORKS = {"shaped": ("big", "small"), "unshaped": ("small",)}


@dataclass
class Upload:
    """Data both contenders upload, and how to tell it landed intact."""
    key: str            # "big" / "small": repo names and NETWORKS
    label: str          # the table row, before the network
    local: Path         # file or folder to copy
    path_in_repo: str
    size: int           # bytes, for the throughput note
    rss_limit: tuple    # (MiB, target text) or (None, "")
    check: Callable     # check(api, repo): raises BenchError unless the Hub has exactly this data


def _git_blob_id(data: bytes) -> str:
    """The id the Hub gives a regular file: git's blob sha1."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _small_files(root: Path) -> Upload:
    """Writes the small-file tree (deterministic hex text) under `root`."""
    rng = np.random.default_rng(5)
    folders, subfolders, files = SMALL_TREE
    blob_ids, total = {}, 0
    for a in range(folders):
        for b in range(subfolders):
            d = root / f"dir{a:02d}" / f"sub{b}"
            d.mkdir(parents=True)
            for c in range(files):
                n = int(rng.integers(*SMALL_SIZES))
                data = rng.bytes((n + 1) // 2).hex()[:n].encode()
                (d / f"file{c:02d}.txt").write_bytes(data)
                blob_ids[f"{root.name}/dir{a:02d}/sub{b}/file{c:02d}.txt"] = _git_blob_id(data)
                total += n

    def check(api, repo: str):
        from huggingface_hub.hf_api import RepoFile

        tree = api.list_repo_tree(repo, path_in_repo=root.name, recursive=True)
        landed = {f.path: f.blob_id for f in tree if isinstance(f, RepoFile)}
        wrong = sum(landed.get(p) != b for p, b in blob_ids.items())
        if wrong or len(landed) != len(blob_ids):
            raise BenchError(f"{len(landed)} files landed; {wrong} of {len(blob_ids)} missing or different")

    return Upload("small", f"cp -r of {len(blob_ids):,} small files", root, root.name, total, (None, ""), check)


def _big_file(ctx) -> Upload:
    """The seeded 1 GiB file's local copy (no need to write another one)."""
    local = Path(ctx.facts.lfs_paths[0])
    name = LFS_FILES[0]
    with open(local, "rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    size = local.stat().st_size

    def check(api, repo: str):
        infos = api.get_paths_info(repo, [name])
        lfs = infos[0].lfs if infos else None
        if lfs is None:
            raise BenchError(f"{name} is not an LFS file on the Hub")
        if (lfs.sha256, lfs.size) != (sha256, size):
            raise BenchError(f"{name} landed as {lfs.size} bytes, sha256 {lfs.sha256[:12]}; "
                             f"expected {size} bytes, sha256 {sha256[:12]}")

    return Upload("big", f"cp of a {size / GIB:g} GiB file", local, name, size,
                  (256, "< 256 MiB (bounded while uploading)"), check)


def _commit_count(api, repo: str) -> int:
    return len(api.list_repo_commits(repo))


@contextlib.contextmanager
def _empty_hub(ctx, network: str):
    """A new emulator on an empty data directory, and the official client on it. One per
    measurement: the Hub stores LFS objects by content, so a second upload of the same file into
    the same emulator would be skipped as already present."""
    from huggingface_hub import HfApi

    shaping = ctx.shaped.shaping if network == "shaped" else []
    with ctx.temp_dir(f"emulator-writes-{network}") as data, \
            Emulator(f"writes-{network}", data, ctx.log_dir / f"emulator-writes-{network}.log", shaping) as emu:
        yield emu, HfApi(endpoint=emu.url, token=WRITE_TOKEN)


def _new_repo(api, name: str) -> tuple[str, int]:
    """An empty repo (what create_repo makes) and its commit count."""
    repo = f"{USER}/{name}"
    api.create_repo(repo)
    return repo, _commit_count(api, repo)


def _landed(api, repo: str, base_commits: int, upload: Upload, seconds: float, detail: str = "") -> tuple[Figure, int]:
    """The figure of a finished upload once the Hub shows it intact, and the commits it took."""
    upload.check(api, repo)
    made = _commit_count(api, repo) - base_commits
    note = f"{made} commit{'s' if made != 1 else ''}, verified"
    if upload.key == "big":
        note = f"{upload.size / MIB / seconds:.0f} MiB/s; {note}"
    return Figure(seconds, note=f"{detail}; {note}" if detail else note), made


def _measure(ctx, section: Section, network: str, upload: Upload):
    row = section.row(f"{upload.label}, {network}", "s", higher_is_better=False, digits=1)
    commits = {}  # contender -> commits its upload made

    def hubfs():
        with _empty_hub(ctx, network) as (emu, api):
            repo, base = _new_repo(api, f"hubfs-{upload.key}")
            drop_caches()
            with ctx.hubfs(emu, repo, token=WRITE_TOKEN) as m:
                with ctx.observe(f"writes: {row.label}", HUBFS_NAME, m, *upload.rss_limit):
                    t0 = time.perf_counter()
                    run(["cp", "-r", upload.local, m.path / upload.path_in_repo], timeout=LAND_TIMEOUT_S)
                    copied = time.perf_counter() - t0
                    m.sync(LAND_TIMEOUT_S)
                    seconds = time.perf_counter() - t0
            fig, commits[HUBFS_NAME] = _landed(api, repo, base, upload, seconds,
                                               f"cp {copied:.1f} s + sync {seconds - copied:.1f} s")
            return fig

    def hf():
        with _empty_hub(ctx, network) as (emu, api), ctx.temp_dir("hf-home") as home:
            repo, base = _new_repo(api, f"hf-{upload.key}")
            drop_caches()
            out = peer_python("peer_hf.py", ["upload", "model", repo, upload.local, upload.path_in_repo], home,
                              emu.url, LAND_TIMEOUT_S, token=WRITE_TOKEN)
            fig, commits[HF] = _landed(api, repo, base, upload, out["seconds"])
            return fig

    for contender, fn in ((HUBFS_NAME, hubfs), (HF, hf)):
        attempt(row, contender, fn, log)
    if upload.key == "small":
        made = section.row(f"commits made by {row.label}", "commits", higher_is_better=False, digits=0)
        for contender, n in commits.items():
            made.figures[contender] = Figure(n)
        made.check_value(HUBFS_NAME, f"<= {MAX_SMALL_COMMITS} (batched, not one per file)",
                         lambda v: v <= MAX_SMALL_COMMITS)


def run_workload(ctx) -> Section:
    os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
    section = Section(
        "Writes: `cp` until landed on the Hub vs upload_file / upload_folder (issue 5)",
        "Seconds until the data is on the Hub (lower is better). hubfs: `cp` (`cp -r`) into a "
        "writable mount of an empty repo's main branch, then `hubfs sync` (returns once every "
        "staged change has landed); the mount is up before the clock starts. huggingface_hub: "
        "`upload_file` (`upload_folder`) into an empty repo, call time only. Page cache dropped "
        "before each run. Each run has its own empty emulator with the read workloads' flags. "
        "Uploads are not throttled, so 'shaped' only adds 20 ms per response: the 1 GiB file "
        "(few requests) runs on the shaped emulator only, the small files on both. Each upload "
        "is verified on the Hub with the official client (LFS sha256; every small file's blob "
        "id) before its figure counts; the commits are counted with `list_repo_commits`."
    )
    with ctx.temp_dir("writes-data") as data:
        uploads = {"big": _big_file(ctx), "small": _small_files(data / "small-files")}
        for network, keys in NETWORKS.items():
            for key in keys:
                _measure(ctx, section, network, uploads[key])
    return section
