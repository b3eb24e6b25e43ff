"""The benchmark's results: sections of rows, one figure per contender, and the targets of
issues 4 and 5 (writes) checked against them. Workloads fill these; `report` renders them."""

from dataclasses import dataclass, field

from .contenders import CONTENDERS, HUBFS_NAME


@dataclass
class Figure:
    value: float | None = None
    error: str | None = None
    note: str = ""  # e.g. "p99 41 ms", "partial: capped at 40 s"


@dataclass
class Check:
    """One target of the issue: `passed` is None when a figure it needs is missing."""
    text: str
    passed: bool | None


@dataclass
class Row:
    label: str
    unit: str
    higher_is_better: bool
    figures: dict = field(default_factory=dict)  # contender -> Figure
    checks: list = field(default_factory=list)
    digits: int = 1

    def value(self, contender: str) -> float | None:
        f = self.figures.get(contender)
        return f.value if f else None

    def speedup(self, peer: str) -> float | None:
        """How much better hubfs is than `peer` (> 1: hubfs wins), whatever the unit's direction."""
        mine, theirs = self.value(HUBFS_NAME), self.value(peer)
        if not mine or not theirs:
            return None
        return mine / theirs if self.higher_is_better else theirs / mine

    def check(self, text: str, passed: bool | None):
        self.checks.append(Check(text, passed))

    def check_speedup(self, peer: str, at_least: float, text: str):
        s = self.speedup(peer)
        self.check(text, None if s is None else s >= at_least)

    def check_value(self, contender: str, text: str, ok):
        """Checks `ok(value)` on one contender's figure."""
        v = self.value(contender)
        self.check(text, None if v is None else bool(ok(v)))


@dataclass
class Section:
    title: str
    how: str  # how it was measured, printed under the title
    rows: list = field(default_factory=list)

    def row(self, label: str, unit: str, higher_is_better: bool, digits: int = 1) -> Row:
        r = Row(label, unit, higher_is_better, digits=digits)
        self.rows.append(r)
        return r

    def contenders(self) -> list:
        used = {c for r in self.rows for c in r.figures}
        return [c for c in CONTENDERS if c in used]


def attempt(row: Row, contender: str, fn, log=None):
    """Runs one measurement; any failure becomes the cell's error instead of ending the run."""
    try:
        fig = fn()
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - a failed contender is a result, not a crash
        if log:
            log(f"  {row.label} / {contender}: ERROR {e}")
        row.figures[contender] = Figure(error=str(e) or type(e).__name__)
        return None
    if not isinstance(fig, Figure):
        fig = Figure(fig)
    row.figures[contender] = fig
    if log:
        shown = "-" if fig.value is None else f"{fig.value:.{row.digits}f}"
        log(f"  {row.label} / {contender}: {shown} {row.unit} {fig.note}")
    return fig


def attempt_many(row: Row, contenders: list, fn, log=None):
    """Like `attempt` for a measurement that yields several contenders' figures at once
    (`fn` returns {contender: Figure}); a failure marks all of them."""
    try:
        figs = fn()
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - a failed measurement is a result, not a crash
        if log:
            log(f"  {row.label}: ERROR {e}")
        for c in contenders:
            row.figures[c] = Figure(error=str(e) or type(e).__name__)
        return
    row.figures.update(figs)
    if log:
        for c, fig in figs.items():
            shown = "-" if fig.value is None else f"{fig.value:.{row.digits}f}"
            log(f"  {row.label} / {c}: {shown} {row.unit} {fig.note}")
