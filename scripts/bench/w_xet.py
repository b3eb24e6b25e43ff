"""Issue 12, item 5, first row: a cold sequential read of a 1 GiB Xet file, side by side: hubfs
through the CAS (chunks verified against their xorb's footer), hubfs through the bridge
(`hubfs --no-xet`: the resolve redirect to the Hub's Xet bridge, on the same Xet-era Hub),
`hf_hub_download` with hf_xet, and `curl -L` of /resolve (which also ends at the bridge).

The other workloads run on `--no-xet` emulators (their repos and targets predate Xet); this one
starts Xet-era emulators of its own (shaped and unshaped, as workload 1) on a data directory of
its own, seeded once by the official client with hf_xet (so the emulator holds the file as
xorbs, as the Hub does), reused while the file's definition is unchanged.

Per contender: MiB/s, CPU-s per GiB (hubfs: its daemon; the others: their own processes) and
the bytes the emulator moved (bridge/resolve bytes + CAS xorb bytes, from `/_emulator/stats`),
cold each time: fresh caches and HF_HOME, page cache dropped, the emulator's xorbs read back
into memory (as a CDN edge serves hot objects from RAM)."""

import json
import os

from .contenders import CURL, HF, HUBFS_BRIDGE, HUBFS_NAME, ReadResult, cat_files, curl_get, peer_python
from .cost import Meter
from .emulator import USER, WRITE_TOKEN, Emulator
from .results import Figure, Section, attempt
from .seed import _write_random
from .util import GIB, MIB, PRETOUCH_MARGIN, WORK, BenchError, drop_caches, fresh_dir, fresh_memory, log

XET_REPO = f"{USER}/xet-file"
XET_FILE = "xet1g.bin"
XET_SIZE = GIB
XET_SEED = 4242
XET_WORK = WORK / "xet"
XET_ORIGINAL = XET_WORK / "original" / XET_FILE
XET_DATA = XET_WORK / "emulator"
XET_STAMP = XET_WORK / "seed.json"
READ_TIMEOUT_S = 300
SEED_TIMEOUT_S = 900


def _definition() -> dict:
    return {"repo": XET_REPO, "file": XET_FILE, "size": XET_SIZE, "seed": XET_SEED, "version": 1}


def ensure_xet_seeded(log_dir) -> None:
    """The 1 GiB file uploaded with hf_xet into a Xet-era emulator's data directory (once)."""
    try:
        if json.loads(XET_STAMP.read_text()) == _definition() and XET_ORIGINAL.exists():
            log("xet seed: reusing bench/work/xet")
            return
    except (OSError, ValueError):
        pass
    log("xet seed: writing the 1 GiB original and uploading it with hf_xet")
    XET_ORIGINAL.parent.mkdir(parents=True, exist_ok=True)
    if not XET_ORIGINAL.exists() or XET_ORIGINAL.stat().st_size != XET_SIZE:
        _write_random(XET_ORIGINAL, XET_SIZE, XET_SEED)
    fresh_dir(XET_DATA)
    with Emulator("xet-seed", XET_DATA, log_dir / "emulator-xet-seed.log", xet=True) as emu:
        home = fresh_dir(XET_WORK / "seed-home")
        out = peer_python("peer_hf.py", ["seed", "model", XET_REPO, str(XET_ORIGINAL), XET_FILE], home,
                          emu.url, timeout=SEED_TIMEOUT_S, token=WRITE_TOKEN, xet=True)
        stats = emu.stats()
        if stats["cas_bytes_received"] < XET_SIZE // 2:
            raise BenchError(f"the seed upload did not go through Xet: {stats}")
        log(f"xet seed: uploaded in {out['seconds']:.1f} s, {stats['cas_bytes_received'] / MIB:.0f} MiB of xorbs")
    XET_STAMP.write_text(json.dumps(_definition()))


def _xorbs():
    return [p for p in (XET_DATA).rglob("default.*") if p.is_file()]


def _cold(emu):
    """Client side cold, server side warm: page cache dropped, then the xorbs (and any LFS copy)
    read back into memory, then backed free pages for the 1 GiB read (`fresh_memory`)."""
    drop_caches()
    emu.warm(_xorbs())
    fresh_memory(GIB + PRETOUCH_MARGIN)


def _moved(before: dict, after: dict) -> int:
    return (after["bytes_served"] - before["bytes_served"]) + (after["cas_bytes_served"] - before["cas_bytes_served"])


def cold_xet_read(ctx, shaping, label) -> Section:
    name = f"xet-{label}"
    section = Section(
        f"Cold sequential read of a 1 GiB Xet file, {label} emulator (issue 12)",
        "A Xet-era emulator holding the file as xorbs (uploaded with hf_xet). hubfs = `cat` through "
        "the CAS (reconstruction, parallel xorb ranges, every chunk checked against its xorb's "
        "footer); `hubfs --no-xet` = the same mount reading the resolve redirect's Xet bridge; "
        "`hf_hub_download` with hf_xet (call time only); `curl -L` of /resolve (ends at the bridge). "
        "Cold: fresh caches and HF_HOME, page cache dropped, the emulator's xorbs then read back into "
        "memory. CPU-s per GiB: hubfs's daemon, or the contender's own processes. Bytes moved: what "
        "the emulator sent (bridge + CAS xorb bytes, `/_emulator/stats`).")
    speed = section.row("1 file of 1 GiB", "MiB/s", higher_is_better=True, digits=0)
    cpu = section.row("CPU-s per GiB", "CPU-s/GiB", higher_is_better=False, digits=2)
    moved_row = section.row("MiB moved by the emulator", "MiB", higher_is_better=False, digits=0)
    with Emulator(name, XET_DATA, ctx.log_dir / f"emulator-{name}.log", shaping, xet=True) as emu:

        def measured(contender, fn):
            _cold(emu)
            before = emu.stats()
            result, cost_s, extra = fn()
            after = emu.stats()
            moved = _moved(before, after)
            if cost_s is not None and result.bytes:
                cpu.figures[contender] = Figure(cost_s / (result.bytes / GIB), note=f"{cost_s:.1f} CPU-s")
            cas = after["cas_bytes_served"] - before["cas_bytes_served"]
            moved_row.figures[contender] = Figure(moved / MIB, note=f"CAS {cas / MIB:.0f} MiB" + extra)
            note = f"{result.bytes / MIB:.0f} MiB in {result.seconds:.1f} s"
            return Figure(result.mib_s, note=note)

        def hubfs(args, contender):
            def run():
                with ctx.hubfs(emu, XET_REPO, args=args) as m:
                    os.listdir(m.path)
                    with ctx.observe(f"1 GiB Xet file, {label}", contender, m), Meter(m.pid) as meter:
                        r = cat_files([m.path / XET_FILE], READ_TIMEOUT_S)
                    st = m.status()
                xet = st.get("xet") or {}
                extra = ""
                if xet:
                    extra = (f"; {xet.get('reconstructions')} plans, {xet.get('xorb_ranges')} xorb ranges, "
                             f"{xet.get('footers_fetched')} footers, {xet.get('fallbacks')} fallbacks")
                if r.partial or r.bytes != XET_SIZE:
                    raise BenchError(f"read {r.bytes} of {XET_SIZE} bytes")
                if contender == HUBFS_NAME and (xet.get("bytes") or 0) < 0.9 * XET_SIZE:
                    raise BenchError(f"hubfs read only {xet.get('bytes')} bytes through the CAS: {xet}")
                return r, meter.cost.cpu_s, extra
            return lambda: measured(contender, run)

        def hf():
            def run():
                with ctx.temp_dir("hf-home-xet") as home:
                    with Meter() as meter:
                        out = peer_python("peer_hf.py", ["download", "model", XET_REPO, XET_FILE], home, emu.url,
                                          timeout=READ_TIMEOUT_S, xet=True)
                return ReadResult(out["seconds"], out["bytes"], False), meter.cost.cpu_s, ""
            return measured(HF, run)

        def curl():
            def run():
                with Meter() as meter:
                    seconds, size = curl_get(emu.resolve_url(XET_REPO, XET_FILE), READ_TIMEOUT_S)
                return ReadResult(seconds, size, False), meter.cost.cpu_s, ""
            return measured(CURL, run)

        for contender, fn in ((HUBFS_NAME, hubfs([], HUBFS_NAME)), (HUBFS_BRIDGE, hubfs(["--no-xet"], HUBFS_BRIDGE)),
                              (HF, hf), (CURL, curl)):
            attempt(speed, contender, fn, log)
    speed.check_speedup(HUBFS_BRIDGE, 1.0, "CAS >= bridge (hubfs --no-xet)")
    speed.check_speedup(HF, 0.5, ">= 0.5x hf_hub_download with hf_xet")
    return section


def run(ctx, shapings) -> list:
    ensure_xet_seeded(ctx.log_dir)
    return [cold_xet_read(ctx, shaping, label) for label, shaping in shapings]
