"""The plant's rules catch what the simulators inject, under virtual time: sensors + forge-mms's processor
with plant.yaml's rules, SQLite in a temporary directory."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

pytest.importorskip("forge_mms.components.sensor_processor")

ALERT = "mms.sensor_alert"
COMMAND = "sensor_monitoring.sensor_command"
PLANT = ("sensors", "processors")
#: The rule plant.yaml's processors raise for each (sensor kind, anomaly): docs/examples/sensor_monitoring.md.
EXPECTED = {
    ("temp", "spike"): "temperature", ("temp", "drift"): "temperature", ("temp", "stuck"): "stuck",
    ("temp", "burst"): "temperature_rate",
    ("vib", "spike"): "vibration_rms", ("vib", "drift"): "vibration_rms", ("vib", "stuck"): "stuck",
    ("vib", "burst"): "vibration_rms",
    ("energy", "spike"): "energy_baseline", ("energy", "drift"): "energy_high", ("energy", "stuck"): "stuck",
    ("energy", "burst"): "energy_baseline",
}


def alerts(plant, sensor_id=None):
    return [e.payload for e in plant.sent(type=ALERT) if sensor_id is None or e.payload["sensor_id"] == sensor_id]


def rows(plant, sql):
    with plant.runtime.storage().connect() as conn:
        return list(conn.execute(sa.text(sql)))


def anomalous_seqs(plant, sensor_id):
    return [r[0] for r in rows(plant, f"SELECT seq FROM readings WHERE sensor_id = '{sensor_id}' "
                                      "AND anomaly IS NOT NULL ORDER BY seq")]


@pytest.mark.slow
@pytest.mark.parametrize("anomaly", ["spike", "drift", "stuck", "burst"])
def test_each_anomaly_raises_its_alert_on_each_kind_and_it_clears(sensor_plant, anomaly):
    targets = ["temp-1", "vib-1", "energy-1"]
    schedule = [{"at": 60, "sensor": sid, "anomaly": anomaly} for sid in targets]
    plant = sensor_plant(keep=PLANT, params={"sensors": {"anomalies": {"rate": 0.0, "schedule": schedule}}})
    plant.advance(240)
    for sensor_id in targets:
        rule = EXPECTED[(sensor_id.split("-")[0], anomaly)]
        seqs = anomalous_seqs(plant, sensor_id)
        raised = [a for a in alerts(plant, sensor_id) if a["rule"] == rule and a["state"] == "raised"]
        assert raised, f"{sensor_id} {anomaly}: no {rule} alert; got {[a['rule'] for a in alerts(plant, sensor_id)]}"
        assert seqs[0] <= raised[0]["reading_seq"] <= seqs[-1] + 10, "raised by a reading of the anomaly"
        cleared = {a["alert_id"] for a in alerts(plant, sensor_id) if a["state"] == "cleared"}
        assert {a["alert_id"] for a in alerts(plant, sensor_id) if a["state"] == "raised"} == cleared, "all clear"
    quiet = [a for a in alerts(plant) if a["sensor_id"] not in targets]
    assert quiet == [], "no alert on a sensor without an anomaly"
    summary = plant.stop()
    failed = [c for c in summary.checks if not c.passed]
    assert not failed, failed


@pytest.mark.slow
def test_a_clean_run_raises_no_alert_even_at_ten_times_the_rate(sensor_plant):
    plant = sensor_plant(keep=PLANT, params={"sensors": {"anomalies": {"rate": 0.0, "schedule": []}}})
    plant.advance(600)
    plant.publish("sensors/control", COMMAND, {"command": "scale", "scale": 10.0, "reason": "high load"})
    plant.advance(120)
    assert alerts(plant) == []
    stored = rows(plant, "SELECT count(*) FROM readings")[0][0]
    assert stored > 9 * (600 + 120 * 9), "the tenfold rate was stored too"
    summary = plant.stop()
    assert [c.name for c in summary.checks if not c.passed] == []
    assert "0 alerts" in next(c.detail for c in summary.checks if c.name == "no alert without an injected anomaly")


@pytest.mark.slow
def test_an_anomaly_injected_by_command_is_alerted(sensor_plant):
    plant = sensor_plant(keep=PLANT, params={"sensors": {"anomalies": {"rate": 0.0, "schedule": []}}})
    plant.advance(60)
    before = len(plant.observed)
    # publish() settles the bus, which with the plant's batch_wait lets plant time pass: count from before it
    command = plant.publish("sensors/control", COMMAND, {"command": "inject", "sensor_id": "temp-3", "anomaly": "spike",
                                                 "duration": 5.0, "reason": "drill"})
    found = plant.expect(ALERT, within=5.0, after=before, where=lambda e: e.payload["sensor_id"] == "temp-3")
    assert found.time - command.time <= 5.0, "published within 5 s of plant time of the command"
    assert found.payload["rule"] in ("temperature", "temperature_rate") and found.payload["severity"] == "critical"
    assert found.payload["reading_seq"] in anomalous_seqs(plant, "temp-3"), "raised by a reading of the spike"
    plant.advance(60)
    summary = plant.stop()
    assert all(c.passed for c in summary.checks), [c for c in summary.checks if not c.passed]
