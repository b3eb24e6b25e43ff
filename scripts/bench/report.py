"""Renders a run: one markdown table per section (figures, hubfs's ratio to each peer, targets
with PASS/FAIL), hubfs's own counters, a PNG chart, and the README's performance section."""

import dataclasses
import json
import math
import re
from pathlib import Path

from .contenders import HUBFS_NAME
from .results import Row, Section
from .util import MIB, ROOT

README = ROOT / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SHORT = {"hubfs --no-xet (bridge)": "hubfs-bridge", "huggingface_hub": "hf_hub", "HfFileSystem+fsspec.fuse": "HfFS-fuse", "local copy": "local"}


def _md(text: str) -> str:
    """Text safe inside a table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _num(v: float, digits: int) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def _cell(row: Row, contender: str) -> str:
    fig = row.figures.get(contender)
    if fig is None:
        return "—"
    if fig.error:
        return f"error: {_md(fig.error[:120])}"
    text = _num(fig.value, row.digits)
    return f"{text}<br><sub>{_md(fig.note)}</sub>" if fig.note else text


def _ratios(row: Row, contenders) -> str:
    parts = []
    for c in contenders:
        if c == HUBFS_NAME:
            continue
        s = row.speedup(c)
        if s is not None:
            parts.append(f"{s:.2f}x {SHORT.get(c, c)}")
    return ", ".join(parts) or "—"


def _verdict(p) -> str:
    return {True: "PASS", False: "**FAIL**", None: "n/a (missing figure)"}[p]


def section_markdown(section: Section) -> str:
    contenders = section.contenders()
    head = ["workload"] + contenders + ["hubfs vs peers", "target", "result"]
    lines = [f"### {section.title}", "", section.how, "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in section.rows:
        cells = [_md(f"{row.label} ({row.unit})")] + [_cell(row, c) for c in contenders]
        cells.append(_ratios(row, contenders))
        cells.append("<br>".join(_md(c.text) for c in row.checks) or "—")
        cells.append("<br>".join(_verdict(c.passed) for c in row.checks) or "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def diagnostics_markdown(diags) -> str:
    head = ["hubfs run", "wall s", "daemon CPU s", "emulator CPU s", "machine CPUs busy", "peak RSS MiB", "fetches",
            "MiB fetched", "KiB per fetch", "block hits", "block misses", "Hub requests"]
    lines = ["### hubfs counters per run (`hubfs status --json`)", "",
             "What the daemon did during each measured hubfs run (counter deltas): its CPU time "
             "and the emulator's, the share of all the machine's CPUs busy meanwhile (near 100%: "
             "the run was CPU-bound), range fetches and their mean size, block cache hits/misses, "
             "HTTP requests to the Hub.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def f(v, digits=1):
        if v is None:
            return "—"
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    for d in diags:
        read, hub = d.counters.get("read", {}), d.counters.get("hub", {})
        fetches, fetched = read.get("fetches"), read.get("bytes_fetched")
        per = fetched / fetches / 1024 if fetches and fetched is not None else None
        lines.append("| " + " | ".join([
            _md(d.workload), f(d.wall_s), f(d.cpu_s), f(d.emulator_cpu_s),
            "—" if d.machine_busy is None else f"{d.machine_busy:.0%}", f(d.peak_rss_mib, 0),
            f(fetches), f(None if fetched is None else fetched / MIB, 0), f(per, 0),
            f(read.get("block_hits")), f(read.get("block_misses")), f(hub.get("requests"))]) + " |")
    return "\n".join(lines) + "\n"


def counters_json(diags) -> str:
    """The diagnostics in full: each run's `hubfs status --json` counter deltas with its
    times, one object per run."""
    return json.dumps([dataclasses.asdict(d) for d in diags], indent=1, sort_keys=True) + "\n"


def summary(sections) -> tuple[int, int, int]:
    checks = [c for s in sections for r in s.rows for c in r.checks]
    return (sum(c.passed is True for c in checks), sum(c.passed is False for c in checks),
            sum(c.passed is None for c in checks))


def document(sections, diags, header: str, chart: str | None) -> str:
    passed, failed, missing = summary(sections)
    out = [header, "",
           f"**Targets of issues 4 and 5 (writes): {passed} pass, {failed} fail"
           + (f", {missing} without a figure" if missing else "") + ".** "
           "Ratios are hubfs relative to each peer, oriented so that > 1 means hubfs is better "
           "(faster, more IOPS, fewer bytes or less memory).", ""]
    if chart:
        out += [f"![benchmark chart]({chart})", ""]
    out += [section_markdown(s) for s in sections]
    if diags:
        out.append(diagnostics_markdown(diags))
    return "\n".join(out)


# One color per contender in every panel; the local copy (a ceiling, not a peer) in grey.
COLORS = {"hubfs": "tab:blue", "hubfs --no-xet (bridge)": "tab:cyan", "curl": "tab:orange", "huggingface_hub": "tab:green",
          "HfFileSystem+fsspec.fuse": "tab:red", "local copy": "tab:gray"}


def chart(sections, path: Path):
    """One panel per section with a figure for several contenders: grouped bars, log scale."""
    import textwrap

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [s for s in sections if len(s.contenders()) > 1]
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(15, 4.6 * rows), squeeze=False)
    for ax, section in zip(axes.flat, panels):
        contenders = section.contenders()
        # One unit per panel: the first row's (safetensors also has byte rows).
        plotted = [r for r in section.rows if r.unit == section.rows[0].unit]
        width = 0.8 / len(contenders)
        for i, c in enumerate(contenders):
            xs, ys = [], []
            for j, r in enumerate(plotted):
                v = r.value(c)
                if v:
                    xs.append(j + i * width - 0.4 + width / 2)
                    ys.append(v)
            ax.bar(xs, ys, width, label=c, color=COLORS.get(c))
        many = len(plotted) > 6
        ax.set_xticks(range(len(plotted)))
        ax.set_xticklabels([r.label if many else textwrap.fill(r.label, 22) for r in plotted],
                           fontsize=7, rotation=30 if many else 0, ha="right" if many else "center")
        first = plotted[0]
        ax.set_ylabel(f"{first.unit} ({'higher' if first.higher_is_better else 'lower'} is better)", fontsize=8)
        ax.set_yscale("log")
        ax.set_title(re.sub(r" \(workload.*\)", "", section.title), fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def update_readme(body: str, readme: Path = README):
    """Replaces what lies between the bench markers of `readme` with `body`."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise RuntimeError(f"{readme} lacks the {BEGIN} / {END} markers")
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END)
    readme.write_text(text[:start] + "\n" + body.strip() + "\n" + text[end:])
