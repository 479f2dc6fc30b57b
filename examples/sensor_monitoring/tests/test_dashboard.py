"""The sensor plant's dashboard panel: produced and stored readings, alerts and the processors'
batch times, from the live view's snapshot (virtual time, embedded profile)."""

from __future__ import annotations

import pytest
from sensor_monitoring.dashboard import panel

pytest.importorskip("forge_mms.components.sensor_processor")

QUIET = {"anomalies": {"rate": 0.0, "schedule": [{"at": 5, "sensor": "temp-1", "anomaly": "spike", "duration": 60}]}}


def test_produced_stored_alerts_and_processors(sensor_plant):
    plant = sensor_plant(keep=("sensors", "processors", "monitor"), params={"sensors": QUIET})
    plant.advance(20.0)
    shown = panel(plant.runtime)
    snap = plant.component("monitor").snapshot()
    assert shown is not None and shown.title == "sensor plant"
    assert shown.fields["produced"].startswith(f"{snap['produced']} (") and shown.fields["active alerts"] >= 1
    processors, alerts = shown.tables
    assert {row[0] for row in processors.rows} == set(snap["processors"]) and processors.rows
    assert all(row[1] == "-" for row in processors.rows)  # the memory bus has no partitions
    assert sorted({row[1] for row in alerts.rows}) == ["temp-1"]


def test_not_this_plant(sensor_plant):
    plant = sensor_plant(keep=("sensors",), params={"sensors": QUIET})
    assert panel(plant.runtime) is None
