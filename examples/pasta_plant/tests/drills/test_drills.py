"""The pasta plant's fault drill (see conftest.py), run once for the module; each test asserts one figure
(``-s`` prints the drill's report)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pasta_drill_figures import measure, print_report
from pasta_drill_run import Drill, run_drill


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory, postgres_server: Any) -> Iterator[Drill]:
    """One drill run for the module's tests (each asserts one figure)."""
    tmp = tmp_path_factory.mktemp("drill")
    url = postgres_server.create_database("pasta_drills")
    try:
        d = run_drill(tmp, url)
        measure(d)
        if any(d.problems.values()):  # pytest removes old temp dirs: keep the logs for whoever reads the failure
            kept = Path(tempfile.mkdtemp(prefix="forge-drill-"))
            shutil.copytree(d.logs, kept / "processes")
            for path in tmp.glob("run.*"):
                shutil.copy(path, kept)
            for path in (tmp / "mosquitto").glob("*.log"):
                shutil.copy(path, kept)
            d.logs = kept / "processes"
        print_report(d)
        yield d
    finally:
        postgres_server.drop_database("pasta_drills")


pytestmark = [pytest.mark.drills, pytest.mark.servers, pytest.mark.timeout(600)]


def test_every_check_passed_with_the_whole_plant_checks(drill: Drill) -> None:
    assert not drill.problems["checks"], drill.problems["checks"]


def test_every_process_kind_was_killed_and_came_back(drill: Drill) -> None:
    assert not drill.problems["processes"], drill.problems["processes"]


def test_no_heartbeat_lost_or_produced_twice(drill: Drill) -> None:
    assert not drill.problems["heartbeats"], drill.problems["heartbeats"]


def test_no_forged_command_obeyed(drill: Drill) -> None:
    assert not drill.problems["forgery"], drill.problems["forgery"]


def test_no_false_down(drill: Drill) -> None:
    assert not drill.problems["status"], drill.problems["status"]


def test_every_dead_letter_of_the_flood_accounted_for(drill: Drill) -> None:
    assert not drill.problems["dead letters"], drill.problems["dead letters"]
