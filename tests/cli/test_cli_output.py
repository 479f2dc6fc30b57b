"""The run summary a person reads: verdict first and last, no epoch floats, numbers that agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from forge_core.checks import Check
from forge_core.cli.output import component_count, summary_table
from forge_core.runtime.summary import RunSummary

PASTA = Path(__file__).resolve().parents[2] / "examples" / "pasta_plant"
EPOCH = re.compile(r"\b1[0-9]{9}(\.[0-9]+)?\b")  # seconds since 1970 from 2001 to 2286


@pytest.fixture(scope="module")
def chaos_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What `forge run examples/pasta_plant --simulate 30m --seed 7 --profile chaos` prints (a copy of
    the plant, so its database starts empty)."""
    import shutil
    import subprocess
    import sys

    plant = tmp_path_factory.mktemp("pasta") / "pasta_plant"
    shutil.copytree(PASTA, plant, ignore=shutil.ignore_patterns(".forge", "*.db", "__pycache__", "tests"))
    result = subprocess.run([sys.executable, "-m", "forge_core.cli", "run", str(plant), "--simulate", "30m",
                             "--seed", "7", "--profile", "chaos"], capture_output=True, text=True, timeout=600,
                            env={**__import__("os").environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_verdict_comes_first_and_last(chaos_report: str) -> None:
    lines = chaos_report.splitlines()
    assert lines[0].startswith("simulating plant pasta_plant")
    assert re.fullmatch(r"all \d+ checks (that ran )?passed.*", lines[1]), lines[1]
    assert lines[-1] == lines[1]
    assert lines[2] == "invariant checks"  # then the checks, then the details


def test_no_epoch_floats_in_the_report(chaos_report: str) -> None:
    assert not EPOCH.search(chaos_report), EPOCH.search(chaos_report)
    assert re.search(r"2024-01-01T00:\d\d:\d\d\.\d{3}Z", chaos_report)  # the chaos events' times, as ISO 8601
    assert "💯" not in chaos_report  # a key "received:100:" is not an emoji code


def _row(report: str, first: str) -> list[str]:
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r}")


def test_restarts_and_kills_agree_with_what_chaos_counted(chaos_report: str) -> None:
    total = _row(chaos_report, "10 instances")
    restarts, kills = int(total[2]), int(total[3])
    machine_kills, scheduler_kills = int(_row(chaos_report, "machine_kills")[1]), \
        int(_row(chaos_report, "scheduler_kills")[1])
    assert kills == machine_kills + scheduler_kills > 0
    assert restarts == int(_row(chaos_report, "restarts")[1])
    dead = _row(chaos_report, "dead_at_end")[1]
    for name in [n.strip() for n in dead.split(",") if n.strip() not in ("", "-")]:
        assert f"report: {name} none: killed when the run ended" in chaos_report
        assert re.search(rf"│ {name} +│ not run +│", chaos_report)


def _render(summary: RunSummary) -> str:
    import io

    from rich.console import Console

    out = Console(file=io.StringIO(), width=200, emoji=False)
    for part in summary_table(summary):
        out.print(part)
    return out.file.getvalue()  # type: ignore[attr-defined]


def test_a_failed_check_is_the_verdict_and_listed_first() -> None:
    summary = RunSummary(plant="p", profile=None, clock="virtual", seed=0, duration=86400.0, wall_seconds=1.5,
                         components={"m": "stopped"}, stop_reason="duration 86400s reached",
                         checks=[Check("fine", True, "ok", "m"), Check("stock >= 0", False, "-3 at noon", "m")])
    text = _render(summary).splitlines()
    assert text[0] == text[-1] == "1 of 2 checks FAILED: stock >= 0 (m)"
    failed_row = next(i for i, line in enumerate(text) if "stock >= 0" in line and "FAIL" in line)
    assert failed_row < next(i for i, line in enumerate(text) if "│ fine" in line)
    assert "duration 1d reached" in "\n".join(text) and "wall 1.5s" in "\n".join(text)


def test_validate_and_run_count_components_alike() -> None:
    assert component_count(7, 10) == "7 components (10 instances)"
    assert component_count(2, 2) == "2 components" and component_count(1, 1) == "1 component"
