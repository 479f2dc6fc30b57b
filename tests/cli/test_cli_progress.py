"""What a long run shows while it runs: the distributed parent's children (the simulation's bar is
tested in test_cli_run.py, on a pseudo-terminal and a pipe)."""

from __future__ import annotations

import re
from pathlib import Path

from forge_core.cli.progress import wall


def test_wall_time_reads_like_a_stopwatch() -> None:
    assert wall(0) == "0:00:00" and wall(75.3) == "0:01:15" and wall(3 * 3600 + 61) == "3:01:01"


def test_the_distributed_parent_prints_its_childrens_states_on_a_pipe(forge, bakery: Path) -> None:
    manifest = bakery / "plant.yaml"
    text = manifest.read_text()
    if "  split:" not in text:
        manifest.write_text(text + "  split:\n    runtime: {processes: per_component}\n")
    result = forge("run", bakery, "--profile", "split", "--duration", "3s", timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("running plant bakery as 2 processes")
    for name in ("machine", "log"):  # each child's state as it changes, before the summary
        states = [line for line in lines if line.startswith(f"  {name}: ")]
        assert states and states[0].startswith(f"  {name}: running (pid "), lines[:10]
    assert "\x1b[" not in result.stdout  # no live table on a pipe
    # the summary's processes table: lives, kills, crash restarts, pids, how each life ended
    assert re.search(r"^│ machine +│ +1 │ +0 │ +0 │ +\d+ +│ (0|SIGTERM) ", result.stdout, re.M), result.stdout
