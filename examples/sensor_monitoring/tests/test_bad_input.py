"""Bad input: malformed readings on sensor-data are dead-lettered (named, nothing stored, the rest flows);
a typo in the manifest is a ``forge validate`` problem naming its field."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import sqlalchemy as sa
import yaml
from sensor_monitoring.testing import PLANT, manifest

pytest.importorskip("forge_mms.components.sensor_processor")

QUIET = {"anomalies": {"rate": 0.0, "schedule": []}}
GOOD = {"sensor_id": "plain-1", "kind": "temperature", "location": "lab", "seq": 1, "value": 61.5, "unit": "C",
        "timestamp": "2024-01-01T00:00:30Z"}


def cloud_event(data, type_="mms.sensor_reading"):
    """A structured CloudEvent, as a non-Forge producer on Kafka would send one."""
    return {"specversion": "1.0", "id": f"bad-{id(data)}", "source": "buggy-gateway", "type": type_, "data": data}


def test_malformed_readings_are_dead_lettered_and_the_rest_is_stored(sensor_plant):
    plant = sensor_plant(keep=("sensors", "processors"), params={"sensors": QUIET})
    plant.advance(5)
    bad = {
        "missing seq": cloud_event({k: v for k, v in GOOD.items() if k != "seq"}),
        "value not a number": cloud_event({**GOOD, "value": "hot"}),
        "seq zero": cloud_event({**GOOD, "seq": 0}),
        "unknown kind": cloud_event({**GOOD, "kind": "pressure", "unit": "bar"}),
        "wrong unit": cloud_event({**GOOD, "unit": "F"}),
    }
    for body in bad.values():
        plant.publish_raw("sensor-data", body)
    plant.publish_raw("sensor-data", b"\x00not json")
    plant.publish_raw("sensor-data", cloud_event(GOOD))
    plant.advance(5)
    letters = plant.dead_letters
    assert len(letters) == len(bad) + 1, [(d.reason, d.detail) for d in letters]
    assert all(d.topic == "sensor-data" for d in letters)
    text = " ".join(f"{d.detail} {d.errors}" for d in letters)
    assert "seq" in text and "pressure" in text, text
    with plant.runtime.storage().connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT sensor_id, count(*) FROM readings GROUP BY sensor_id")).all())
    assert stored["plain-1"] == 1, "the well-formed plain reading is stored"
    summary = plant.stop()
    assert all(c.passed for c in summary.checks), [c for c in summary.checks if not c.passed]


def test_a_malformed_command_is_refused_and_the_sensors_carry_on(sensor_plant):
    plant = sensor_plant(keep=("sensors",), params={"sensors": QUIET})
    plant.advance(3)
    plant.publish_raw("sensors/control", cloud_event({"command": "inject", "sensor_id": "temp-1", "anomaly": "fire"},
                                                     type_="sensor_monitoring.sensor_command"))
    plant.publish_raw("sensors/control", cloud_event({"command": "scale"}, type_="sensor_monitoring.sensor_command"))
    plant.advance(3)
    assert len(plant.dead_letters) == 2
    assert all(r.payload["anomaly"] is None for r in plant.sent(type="mms.sensor_reading"))
    assert len([r for r in plant.sent(type="mms.sensor_reading") if r.payload["sensor_id"] == "temp-1"]) == 6


def _validate(tmp_path, doc) -> subprocess.CompletedProcess[str]:
    (tmp_path / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copytree(PLANT / "schemas", tmp_path / "schemas")
    return subprocess.run([sys.executable, "-m", "forge_core.cli", "validate", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)


def test_forge_validate_accepts_the_plant_and_every_profile(tmp_path):
    result = _validate(tmp_path, manifest())
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_typo_in_a_rule_type_names_the_rule_and_the_field(tmp_path):
    doc = manifest()
    doc["components"]["processors"]["params"]["rules"][2]["type"] = "rmss"
    result = _validate(tmp_path, doc)
    out = result.stdout + result.stderr
    assert result.returncode == 1
    assert "components.processors.params.rules[2].type" in out and "'rmss'" in out and "rms" in out, out


def test_a_typo_in_an_anomaly_or_a_sensor_param_names_the_field(tmp_path):
    doc = manifest()
    doc["components"]["sensors"]["params"]["anomalies"]["schedule"][0]["anomaly"] = "spik"
    doc["components"]["sensors"]["params"]["intervall"] = 2.0
    result = _validate(tmp_path, doc)
    out = result.stdout + result.stderr
    assert result.returncode == 1
    assert "components.sensors.params.anomalies.schedule[0].anomaly" in out and "'spik'" in out, out
    assert "intervall" in out, out
