"""The parts of the benchmark that decide verdicts and write files, checked without running
any workload: ratio orientation, target checks, table rendering, the README splice.

    cd scripts && python -m pytest -q bench/tests"""

from bench.contenders import CURL, HUBFS_NAME, LOCAL
from bench.report import BEGIN, END, counters_json, section_markdown, summary, update_readme
from bench.results import Figure, Section, attempt


def test_speedup_is_oriented_so_that_above_one_means_hubfs_wins():
    s = Section("t", "how")
    fast = s.row("throughput", "MiB/s", higher_is_better=True)
    fast.figures = {HUBFS_NAME: Figure(300.0), CURL: Figure(50.0)}
    slow = s.row("time", "s", higher_is_better=False)
    slow.figures = {HUBFS_NAME: Figure(2.0), CURL: Figure(8.0)}
    assert fast.speedup(CURL) == 6.0
    assert slow.speedup(CURL) == 4.0
    assert fast.speedup(LOCAL) is None


def test_checks_pass_fail_and_missing():
    s = Section("t", "how")
    r = s.row("throughput", "MiB/s", higher_is_better=True)
    r.figures = {HUBFS_NAME: Figure(250.0), CURL: Figure(50.0), LOCAL: Figure(error="boom")}
    r.check_speedup(CURL, 6, ">= 6x curl")
    r.check_speedup(CURL, 4, ">= 4x curl")
    r.check_speedup(LOCAL, 0.5, ">= 0.5x local")
    r.check_value(HUBFS_NAME, "< 256", lambda v: v < 256)
    assert [c.passed for c in r.checks] == [False, True, None, True]
    assert summary([s]) == (2, 1, 1)


def test_a_failing_measurement_becomes_the_cells_error():
    s = Section("t", "how")
    r = s.row("x", "s", higher_is_better=False)

    def broken():
        raise RuntimeError("emulator gone")

    assert attempt(r, CURL, broken) is None
    assert r.figures[CURL].error == "emulator gone"
    assert attempt(r, HUBFS_NAME, lambda: 1.5).value == 1.5


def test_table_escapes_pipes_and_shows_every_contender():
    s = Section("Metadata", "how")
    r = s.row("find | wc -l", "s", higher_is_better=False)
    r.figures = {HUBFS_NAME: Figure(3.0, note="a | b"), CURL: Figure(error="x")}
    md = section_markdown(s)
    row = [line for line in md.splitlines() if line.startswith("| find")][0]
    assert "find \\| wc -l" in row and "a \\| b" in row and "error: x" in row
    # Every unescaped pipe is a cell border: label, 2 contenders, ratios, target, result.
    assert row.replace("\\|", "").count("|") == 7


def test_readme_section_is_replaced_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n## Performance\nintro\n{BEGIN}\nold table\n{END}\n## Next\n")
    update_readme("new table", readme)
    update_readme("newer table", readme)
    text = readme.read_text()
    assert "old table" not in text and "new table\n" not in text
    assert text.endswith(f"{BEGIN}\nnewer table\n{END}\n## Next\n")


def test_counters_json_keeps_every_counter_of_every_run():
    import json

    from bench.ctx import Diagnostic

    runs = [Diagnostic("cold load", 62.4, 3.7, 1.2, 150.0,
                       {"read": {"fetches": 3060, "prefetch_deferred": 41}, "hub": {"requests": 3061}}, 0.05),
            Diagnostic("warm load", 0.3, None, None, None, {})]
    back = json.loads(counters_json(runs))
    assert [r["workload"] for r in back] == ["cold load", "warm load"]
    assert back[0]["counters"]["read"] == {"fetches": 3060, "prefetch_deferred": 41}
    assert back[0]["machine_busy"] == 0.05 and back[1]["cpu_s"] is None
