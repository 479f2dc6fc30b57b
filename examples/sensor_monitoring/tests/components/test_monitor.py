"""The live view (sensor_monitoring.monitor) on the embedded profile: under virtual time its snapshot has
the produced and stored figures, the active alerts and no partition assignments (the memory bus has no
partitions); its table renders to a string; under a real clock it reads the database off the loop."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from rich.console import Console
from sensor_monitoring.testing import derive

pytest.importorskip("forge_mms.components.sensor_processor")

QUIET = {"anomalies": {"rate": 0.0, "schedule": [{"at": 5, "sensor": "temp-1", "anomaly": "spike", "duration": 60}]}}


def test_snapshot_carries_produced_stored_alerts_and_no_partitions_on_memory(sensor_plant):
    plant = sensor_plant(keep=("sensors", "processors", "monitor"), params={"sensors": QUIET})
    plant.advance(20.0)
    snap = plant.component("monitor").report()
    assert snap["produced"] > 0 and snap["produced_per_s"] == pytest.approx(9.0, abs=1.0)  # 9 sensors, 1/s
    assert snap["stored"] > 0 and snap["stored_per_s"] == pytest.approx(9.0, abs=1.5)
    assert snap["processing_ms"]["readings"] > 0 and snap["processing_ms"]["max"] >= 0
    assert snap["active_alerts"] >= 1 and snap["latest_alerts"][0]["sensor"] == "temp-1"
    # the memory bus has no partitions: no assignment, no rebalance, no lag figure
    assert snap["assignments"] == {} and snap["rebalances"] == 0
    assert snap["monitor_partitions"] == [] and snap["monitor_lag"] is None
    assert snap["db_error"] is None and snap["polls"] >= 20


def test_partition_events_become_assignments_and_rebalances(sensor_plant):
    plant = sensor_plant(keep=("monitor",))
    monitor = plant.component("monitor")
    with monitor.engine.begin() as conn:  # rows as mms.sensor_processor writes them
        for at, kind, source, parts, held in (
                (1.0, "partitions_assigned", "processors-0", [["sensor-data", 0], ["sensor-data", 1]], []),
                (2.0, "partitions_assigned", "processors-1", [["sensor-data", 2]], [["sensor-data", 2]]),
                (3.0, "partitions_revoked", "processors-0", [["sensor-data", 1]], [["sensor-data", 0],
                                                                                    ["sensor-data", 1]])):
            conn.execute(monitor_events().insert().values(at=at, kind=kind, source=source,
                                                          detail={"group": "g", "partitions": parts, "held": held}))
    plant.advance(2.0)
    snap = monitor.report()
    assert snap["assignments"] == {"processors-0": [["sensor-data", 0]], "processors-1": [["sensor-data", 2]]}
    assert snap["rebalances"] == 3
    assert [e["kind"] for e in snap["latest_rebalances"]] == ["partitions_assigned", "partitions_assigned",
                                                              "partitions_revoked"]
    text = render(monitor)
    assert "processors-0" in text and "sensor-data[0]" in text and "revoked" in text


def test_the_table_renders_to_a_string(sensor_plant):
    plant = sensor_plant(keep=("sensors", "processors", "monitor"), params={"sensors": QUIET})
    plant.advance(10.0)
    text = render(plant.component("monitor"))
    for label in ("sensor plant", "produced", "stored", "reading -> stored", "active alerts", "partitions",
                  "rebalances (0)", "no partition events"):
        assert label in text, (label, text)


def test_real_clock_run_reports_the_final_snapshot(tmp_path):
    """forge run on the real clock (stdout a pipe: no Live drawing, render auto): the database is read in a
    thread every refresh and the report is the final snapshot."""
    where = derive(tmp_path / "plant", keep=("sensors", "processors", "monitor"),
                   params={"sensors": {**QUIET, "interval": 0.2}, "monitor": {"refresh": 0.5}})
    result = subprocess.run([sys.executable, "-m", "forge_core.cli", "run", str(where), "--json", "--duration", "3s"],
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip(), result.stderr[-3000:]
    snap = json.loads(result.stdout)["reports"]["monitor"]
    assert snap["produced"] > 0 and snap["stored"] > 0 and snap["polls"] >= 2, snap
    assert snap["db_error"] is None and snap["assignments"] == {}
    assert "\u2500" not in result.stdout and "sensor plant" not in result.stdout  # nothing drawn on a pipe


def monitor_events():
    from forge_mms.storage.sensor_tables import system_events

    return system_events


def render(monitor) -> str:
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(monitor.view())
    return console.file.getvalue()
