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
    assert snap["monitor_partitions"] == [] and snap["monitor_lag"] is None and snap["group_lag"] == {}
    # the processors' consumer_status rows: no lag figure on memory, batch time per processor
    assert snap["processors"], "every processor writes consumer_status rows (default status_every 5 s)"
    assert all(s["batch_ms"]["max"] >= s["batch_ms"]["p50"] for s in snap["processors"].values())
    # under virtual time with no table drawn, the database is read when a snapshot is taken, not every refresh
    monitor = plant.component("monitor")
    assert snap["db_error"] is None and snap["polls"] == 1 and monitor.lazy
    assert monitor.report()["polls"] == 1, "a snapshot within refresh seconds of the last read reads nothing"
    plant.advance(5.0)
    later = monitor.report()
    assert later["polls"] == 2 and later["stored"] > snap["stored"]
    assert later["stored_per_s"] == pytest.approx(9.0, abs=1.5)


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


def test_consumer_status_rows_become_group_lag_per_partition_and_batch_time_per_processor(sensor_plant):
    plant = sensor_plant(keep=("monitor",))
    monitor = plant.component("monitor")
    now = plant.clock.time()

    def status(at, source, lag, ms=None, readings=0):
        return {"at": now + at, "kind": "consumer_status", "source": source,
                "detail": {"group": "g", "lag": lag, "held": [k.split(":") for k in lag], "batch_ms": ms,
                           "readings": readings}}

    def assigned(at, source, parts):
        return {"at": now + at, "kind": "partitions_assigned", "source": source,
                "detail": {"group": "g", "partitions": parts, "held": parts}}

    with monitor.engine.begin() as conn:  # rows as mms.sensor_processor writes them
        conn.execute(monitor_events().insert(), [
            status(-120.0, "processors-9", {"sensor-data:1": 999}),  # older than the horizon: never read
            assigned(0.1, "processors-0", [["sensor-data", 0], ["sensor-data", 1]]),
            assigned(0.1, "processors-1", [["sensor-data", 2]]),
            status(0.2, "processors-0", {"sensor-data:0": 40, "sensor-data:1": 3}, {"p50": 2.5, "max": 9.0}, 45),
            status(0.2, "processors-1", {"sensor-data:2": 1}, {"p50": 1.0, "max": 4.0}, 20),
            status(0.3, "processors-0", {"sensor-data:0": 12, "sensor-data:1": 0}, {"p50": 2.0, "max": 7.5}, 50),
        ])
    plant.advance(2.0)
    snap = monitor.report()
    assert {k: v["lag"] for k, v in snap["group_lag"].items()} == {"sensor-data[0]": 12, "sensor-data[1]": 0,
                                                                  "sensor-data[2]": 1}
    assert snap["group_lag"]["sensor-data[2]"]["processor"] == "processors-1"
    assert snap["processors"]["processors-0"]["batch_ms"] == {"p50": 2.0, "max": 7.5}
    assert snap["processors"]["processors-0"]["readings"] == 50 and "processors-9" not in snap["processors"]
    text = render(monitor)
    assert "sensor-data[0] (12)" in text and "2.0/7.5" in text and "group lag" in text and "13 records" in text

    with monitor.engine.begin() as conn:  # partition 1 moves to processors-1; its old holder's row is stale
        conn.execute(monitor_events().insert(), [
            {"at": now + 3.0, "kind": "partitions_revoked", "source": "processors-0",
             "detail": {"group": "g", "partitions": [["sensor-data", 1]],
                        "held": [["sensor-data", 0], ["sensor-data", 1]]}},
            assigned(3.0, "processors-1", [["sensor-data", 1]]),
            status(3.1, "processors-1", {"sensor-data:1": 5, "sensor-data:2": 0}, None, 0),
        ])
    plant.advance(2.0)
    snap = monitor.report()
    assert snap["group_lag"]["sensor-data[1]"] == {"lag": 5, "processor": "processors-1", "at": round(now + 3.1, 3)}
    assert snap["group_lag"]["sensor-data[0]"]["processor"] == "processors-0"
    assert snap["processors"]["processors-1"]["batch_ms"] is None


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


def test_a_poll_reads_the_running_count_and_the_windows_rows_by_index_not_the_table(sensor_plant):
    """A real plant's view must not slow as its table grows: stored is the processors' running count
    (sum of sensors.stored, equal to count(*)), and the window's rows are found by the stored_at index."""
    import sqlalchemy as sa

    plant = sensor_plant(keep=("sensors", "processors", "monitor"), params={"sensors": QUIET})
    plant.advance(20.0)
    monitor = plant.component("monitor")
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_rest):
        statements.append(statement)

    sa.event.listen(monitor.engine, "before_cursor_execute", seen)
    try:
        snap = monitor.report()
    finally:
        sa.event.remove(monitor.engine, "before_cursor_execute", seen)
    with monitor.engine.connect() as conn:
        assert snap["stored"] == conn.execute(sa.text("SELECT count(*) FROM readings")).scalar_one() > 100
        on_readings = [s for s in statements if "FROM readings" in s]
        assert on_readings and all("WHERE stored_at >=" in s for s in on_readings), on_readings
        for statement in on_readings:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                                          (plant.clock.time() - 10,)))
            assert "ix_readings_stored_at" in plan, plan
