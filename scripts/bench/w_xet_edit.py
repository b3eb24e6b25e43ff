"""Xet writes (issue 12 item 5): change 1 MiB in the middle of a 1 GiB file already on the Hub
and make it land, through a writable hubfs mount (open r+b, write 1 MiB, `hubfs sync`) vs
huggingface_hub's `upload_file` with hf_xet of the edited file (a local copy, edited the same
way). Three rows: seconds until landed, bytes the CAS received (xorbs and shards: emulator
stats), and CPU seconds of the contender's process (hubfs: the daemon, whose copy-up of the file
for editing is included; huggingface_hub: the uploading process).

The 1 GiB file is the seeded LFS file's local copy, uploaded first with hf_xet into a fresh
unshaped emulator (one per contender, so neither finds the other's chunks). Each result is
checked with the official client: the Hub's sha256 of the file must be the edited content's.
Optional: `python -m scripts.bench --only xet-edit`."""

import hashlib
import json
import resource
import shutil
import time
from pathlib import Path

from .contenders import HF, HUBFS_NAME
from .emulator import USER, WRITE_TOKEN, Emulator
from .results import Figure, Section, attempt
from .rss import cpu_seconds
from .util import BENCH_DIR, MIB, PYTHON, BenchError, clean_env, log, run

LAND_TIMEOUT_S = 600
PATCH = 1 * MIB


def _patch_bytes() -> bytes:
    return hashlib.shake_256(b"hubfs xet edit").digest(PATCH)


def _sha256_edited(local: Path, at: int) -> str:
    h = hashlib.sha256()
    with open(local, "rb") as f:
        h.update(f.read(at))
        f.seek(at + PATCH)
        h.update(_patch_bytes())
        while chunk := f.read(8 * MIB):
            h.update(chunk)
    return h.hexdigest()


def _xet_upload(emu, home: Path, repo: str, local: Path, name: str) -> float:
    """upload_file with hf_xet (HF_HUB_DISABLE_XET=0) in its own process; returns CPU seconds."""
    env = clean_env(HF_HOME=home, HF_ENDPOINT=emu.url, HF_TOKEN=WRITE_TOKEN, HF_HUB_DISABLE_XET="0",
                    NO_PROXY="127.0.0.1,localhost")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = run([PYTHON, BENCH_DIR / "peer_hf.py", "upload", "model", repo, local, name], timeout=LAND_TIMEOUT_S, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not any(line.startswith("{") for line in r.stdout.splitlines()):
        raise BenchError(f"upload printed no result: {r.stderr[-400:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _check(api, repo: str, name: str, sha256: str):
    info = api.get_paths_info(repo, [name])[0]
    if info.lfs is None or info.lfs.sha256 != sha256:
        raise BenchError(f"{name} on the Hub is not the edited content")
    if not getattr(info, "xet_hash", None):
        raise BenchError(f"{name} has no xetHash on the Hub")


def run_workload(ctx) -> Section:
    local = Path(ctx.facts.lfs_paths[0])
    size = local.stat().st_size
    at = size // 2 + 12345
    name = "edited.bin"
    want = _sha256_edited(local, at)
    section = Section(
        f"Xet writes: 1 MiB edit of a {size / (1 << 30):g} GiB file, until landed (issue 12)",
        "The file is on the Hub already (uploaded with hf_xet). hubfs: writable mount, `open r+b`, "
        "1 MiB written in the middle, `hubfs sync` (includes fetching the file for editing). "
        "huggingface_hub: `upload_file` with hf_xet of a local copy edited the same way (the copy "
        "is made before the clock starts). Unshaped emulator, a fresh one per contender. "
        "Bytes = what the CAS received (xorbs + shards); CPU = the contender's process.")
    rows = {
        "s": section.row("seconds until landed", "s", higher_is_better=False, digits=1),
        "bytes": section.row("bytes sent to the CAS", "MiB", higher_is_better=False, digits=2),
        "cpu": section.row("CPU seconds", "CPU-s", higher_is_better=False, digits=1),
    }
    figures = {}

    def fresh(tag):
        from huggingface_hub import HfApi
        data = ctx.scratch(f"emulator-xet-edit-{tag}")
        emu = Emulator(f"xet-edit-{tag}", data, ctx.log_dir / f"emulator-xet-edit-{tag}.log", xet=True).start()
        api = HfApi(endpoint=emu.url, token=WRITE_TOKEN)
        repo = f"{USER}/xet-edit-{tag}"
        api.create_repo(repo)
        with ctx.temp_dir(f"hf-home-seed-{tag}") as home:
            _xet_upload(emu, home, repo, local, name)
        return emu, api, repo, data

    def hubfs():
        emu, api, repo, data = fresh("hubfs")
        try:
            with ctx.hubfs(emu, repo, token=WRITE_TOKEN) as m:
                pid = m.daemon_pid()
                cpu0, cas0 = cpu_seconds(pid), emu.stats()["cas_bytes_received"]
                t0 = time.perf_counter()
                with open(m.path / name, "r+b") as f:
                    f.seek(at)
                    f.write(_patch_bytes())
                edited = time.perf_counter() - t0
                cpu_edit = cpu_seconds(pid) - cpu0
                m.sync(LAND_TIMEOUT_S)
                seconds = time.perf_counter() - t0
                cpu = cpu_seconds(pid) - cpu0
                sent = emu.stats()["cas_bytes_received"] - cas0
            _check(api, repo, name, want)
            figures[HUBFS_NAME] = (sent, cpu)
            return Figure(seconds, note=f"open+write {edited:.1f} s ({cpu_edit:.1f} CPU-s) + sync "
                                        f"{seconds - edited:.1f} s; verified")
        finally:
            emu.stop()
            shutil.rmtree(data, ignore_errors=True)

    def hf():
        emu, api, repo, data = fresh("hf")
        try:
            with ctx.temp_dir("xet-edit-copy") as d, ctx.temp_dir("hf-home-xet-edit") as home:
                edited = d / name
                shutil.copyfile(local, edited)
                with open(edited, "r+b") as f:
                    f.seek(at)
                    f.write(_patch_bytes())
                cas0 = emu.stats()["cas_bytes_received"]
                t0 = time.perf_counter()
                cpu = _xet_upload(emu, home, repo, edited, name)
                seconds = time.perf_counter() - t0
                sent = emu.stats()["cas_bytes_received"] - cas0
            _check(api, repo, name, want)
            figures[HF] = (sent, cpu)
            return Figure(seconds, note="hf_xet, verified")
        finally:
            emu.stop()
            shutil.rmtree(data, ignore_errors=True)

    for contender, fn in ((HUBFS_NAME, hubfs), (HF, hf)):
        attempt(rows["s"], contender, fn, log)
        if contender in figures:
            sent, cpu = figures[contender]
            rows["bytes"].figures[contender] = Figure(sent / MIB)
            rows["cpu"].figures[contender] = Figure(cpu)
            log(f"  xet edit / {contender}: {sent} bytes to the CAS, {cpu:.1f} CPU-s "
                f"({json.dumps({'bytes': sent, 'cpu_s': cpu})})")
    rows["bytes"].check_value(HUBFS_NAME, "< 3 MiB (about the 1 MiB changed)", lambda v: v < 3)
    return section
