"""Workload 5: metadata of a dataset repo with 100,000 files (90,000 in nested folders, 10,000
in one folder): `find | wc -l` and `ls -lR > /dev/null`, cold (a fresh mount and cache) and warm
(the same mount again), against `list_repo_tree(recursive=True)` alone, on the shaped emulator.
The count `find` prints is checked, so a fast but incomplete walk cannot pass."""

from .contenders import HF, HFFUSE, HUBFS_NAME, peer_python
from .results import Figure, Section, attempt
from .seed import DATASET_REPO
from .util import BenchError, log, timed

WALK_TIMEOUT_S = 120
# The Python peer walks 100k files one FUSE request at a time; past this it is reported as timed out.
HFFUSE_TIMEOUT_S = 90


def _find(path, expected: int, timeout: float) -> Figure:
    seconds, r = timed(["bash", "-c", f"find '{path}' | wc -l"], timeout)
    count = int(r.stdout.strip())
    if count != expected:
        raise BenchError(f"find saw {count} entries, expected {expected}")
    return Figure(seconds, note=f"{count} entries")


def _ls(path, timeout: float) -> Figure:
    seconds, _ = timed(["bash", "-c", f"ls -lR '{path}' > /dev/null"], timeout)
    return Figure(seconds)


def run(ctx) -> Section:
    emu = ctx.shaped
    facts = ctx.facts
    # What the Hub lists (the files, the folders and the .gitattributes every new repo gets),
    # plus the root itself; replaced by the bare listing's own count once it ran.
    expected = facts.dataset_files + facts.dataset_dirs + 1 + 1
    section = Section(
        "Metadata, 100k files, shaped emulator (workload 5)",
        f"Seconds (lower is better). {facts.dataset_files} files in {facts.dataset_dirs} folders. "
        "Cold: a fresh mount (and cache); warm: the same command again in that mount. "
        "huggingface_hub: `list_repo_tree(recursive=True)` consumed, call time only. "
        "HfFileSystem+fsspec.fuse walks `find` only (time budget)."
    )
    listing = section.row("list_repo_tree(recursive=True) alone", "s", False, digits=2)
    find_cold = section.row("find | wc -l, cold", "s", False, digits=2)
    find_warm = section.row("find | wc -l, warm", "s", False, digits=2)
    ls_cold = section.row("ls -lR, cold", "s", False, digits=2)
    ls_warm = section.row("ls -lR, warm", "s", False, digits=2)

    listed = {}

    def bare_listing():
        with ctx.temp_dir("hf-home") as home:
            out = peer_python("peer_hf.py", ["list", "dataset", DATASET_REPO], home, emu.url, timeout=WALK_TIMEOUT_S)
        listed["entries"] = out["entries"]
        return Figure(out["seconds"], note=f"{out['entries']} entries")

    first = attempt(listing, HF, bare_listing, log)
    expected = listed.get("entries", expected - 1) + 1

    def walks(open_mount, contender, timeout, rss_limit, with_ls=True):
        kinds = [(find_cold, find_warm, lambda p: _find(p, expected, timeout))]
        if with_ls:
            kinds.append((ls_cold, ls_warm, lambda p: _ls(p, timeout)))
        for cold, warm, walk in kinds:
            def cold_then_warm():
                with open_mount() as m:
                    with ctx.observe(f"metadata, {cold.label.split(',')[0]} (100k entries)", contender, m, *rss_limit):
                        fig = walk(m.path)
                        attempt(warm, contender, lambda: walk(m.path), log)
                return fig
            attempt(cold, contender, cold_then_warm, log)

    walks(lambda: ctx.hubfs(emu, f"datasets/{DATASET_REPO}"), HUBFS_NAME, WALK_TIMEOUT_S,
          (300, "< 300 MiB (100k entries)"))
    # The peer walks `find` only: its `ls -lR` took as long again (45 s cold, 18 s warm in the
    # runs of 2026-11-26) and would push the benchmark past its time budget.
    walks(lambda: ctx.hffuse(emu, DATASET_REPO, "dataset"), HFFUSE, HFFUSE_TIMEOUT_S, (None, ""),
          with_ls=False)
    # A second listing after the walks; the faster one stands (the machine is shared and noisy).
    second = attempt(listing, HF, bare_listing, log)
    done = [f for f in (first, second) if f is not None and f.value is not None]
    if done:
        best = min(done, key=lambda f: f.value)
        listing.figures[HF] = best
        # The cold walks are compared with the bare listing: it is in their huggingface_hub cell.
        for row in (find_cold, ls_cold):
            row.figures[HF] = Figure(best.value, note="list_repo_tree alone")

    find_cold.check("hubfs time <= 1.3x the bare listing",
                    None if find_cold.speedup(HF) is None else find_cold.speedup(HF) >= 1 / 1.3)
    find_warm.check_value(HUBFS_NAME, "< 2 s", lambda v: v < 2)
    return section
