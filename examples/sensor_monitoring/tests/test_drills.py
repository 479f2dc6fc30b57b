"""The sensor plant's four failure drills, each on its own three-broker Apache Kafka cluster, with the
report's figures asserted (marker ``drills``: ``.venv/bin/python -m pytest -m drills
examples/sensor_monitoring/tests/test_drills.py -s`` prints each report).

Every drill runs ``forge run examples/sensor_monitoring --profile cluster`` (a process per component
instance) as ``forge drill`` does, and must show: 0 readings lost, 0 stored twice, no alert raised twice,
no missed critical alert (the spike the drill injects during the fault is alerted), the plant's own
checks passed, recovery within the bound derived from the profile's settings and the lag drained
within the drain phase (docs/examples/sensor_monitoring_drills.md has the bounds).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from forge_kafka.cluster import fetch_kafka, java_or_error
from sensor_monitoring.drills import scenarios

from forge_core.plugin import DrillOptions, DrillReport
from forge_core.testing import ServerUnavailable

PLANT = Path(__file__).resolve().parents[1]
#: figures every drill must pass (the scenario adds its own, also asserted through report.failed())
COMMON = ("readings lost", "duplicate readings stored", "alerts raised twice", "missed critical alerts",
          "time to recover", "lag drain time", "plant checks failed")

pytestmark = [pytest.mark.drills, pytest.mark.servers, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def kafka_available() -> None:
    try:
        java_or_error()
        fetch_kafka()
    except ServerUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def run_drill(kafka_available: None, postgres_server: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``run_drill(name)`` -> its report, run once per module (a fresh database and cluster each)."""
    by_name = {s.name: s for s in scenarios()}
    done: dict[str, DrillReport] = {}
    databases: list[str] = []

    def run(name: str) -> DrillReport:
        if name not in done:
            database = f"drill_{name.replace('-', '_')}"
            databases.append(database)
            url = postgres_server.create_database(database)
            work = tmp_path_factory.mktemp(name)
            report = by_name[name].run(PLANT, DrillOptions(work_dir=work, extra={"database_url": url}))
            print(f"\n{report.table()}\n  work dir: {work}", flush=True)
            done[name] = report
        return done[name]

    yield run
    for database in databases:
        postgres_server.drop_database(database)


def assert_drill(report: DrillReport) -> None:
    assert report.error is None, f"the drill did not finish: {report.error}\n{report.table()}"
    for name in COMMON:
        figure = report.figure(name)
        assert figure.ok, f"{name}: {figure.value} {figure.unit}, expected {figure.expect} ({figure.note})\n" \
                          f"{report.table()}"
    assert not report.failed(), report.table()
    assert report.figure("readings stored").value, report.table()


def test_broker_failure(run_drill: Any) -> None:
    report = run_drill("broker-failure")
    assert_drill(report)
    assert report.figure("leaders moved off the killed broker").ok, report.table()
    assert report.figure("killed broker back in every ISR").ok, report.table()


def test_consumer_failure(run_drill: Any) -> None:
    report = run_drill("consumer-failure")
    assert_drill(report)
    assert report.figure("rebalances after the fault").value, f"no partition moved\n{report.table()}"


def test_network_partition(run_drill: Any) -> None:
    assert_drill(run_drill("network-partition"))


def test_high_load(run_drill: Any) -> None:
    report = run_drill("high-load")
    assert_drill(report)
    assert report.figure("processing capacity").value, report.table()
    assert report.figure("consumer lag peak").value is not None, report.table()
