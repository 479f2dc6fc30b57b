"""The schemas of mms.sensor_reading and mms.sensor_alert: the contract's examples pass, strays are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from forge_core.plugin import SchemaRegistry

import forge_mms

READING: dict[str, Any] = {"sensor_id": "temp-1", "kind": "temperature", "location": "line-1", "seq": 42,
                           "value": 71.3, "unit": "C", "timestamp": "2026-12-02T14:00:00.123Z", "anomaly": None}
ALERT: dict[str, Any] = {
    "alert_id": "temp-1:temperature:42", "sensor_id": "temp-1", "kind": "temperature", "rule": "temperature",
    "type": "threshold", "severity": "critical", "state": "raised", "value": 104.2, "threshold": 100.0,
    "window": {"from_seq": 42, "to_seq": 42, "seconds": 0.0}, "reading_seq": 42, "raised_seq": 42,
    "timestamp": "2026-12-02T14:00:42.123Z", "location": "line-1", "reason": "value 104.2 > critical 100"}


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    registry = SchemaRegistry()
    registry.add_directory(Path(forge_mms.__file__).parent / "schemas", plugin="mms")
    return registry


def test_the_contract_examples_are_valid(registry: SchemaRegistry) -> None:
    assert registry.get("mms.sensor_reading").errors(READING) == []
    assert registry.get("mms.sensor_reading").errors({k: v for k, v in READING.items() if k != "anomaly"}) == []
    assert registry.get("mms.sensor_alert").errors(ALERT) == []


@pytest.mark.parametrize(("change", "pointer"), [
    ({"seq": 0}, "/seq"), ({"seq": 1.0}, "/seq"), ({"sensor_id": "a/b"}, "/sensor_id"), ({"sensor_id": ""}, "/sensor_id"),
    ({"kind": "Temp"}, "/kind"), ({"value": "hot"}, "/value"), ({"timestamp": "yesterday"}, "/timestamp"),
    ({"anomaly": "meteor"}, "/anomaly"), ({"extra": 1}, "/extra")])
def test_a_bad_reading_is_refused_naming_the_field(registry: SchemaRegistry, change: dict[str, Any],
                                                   pointer: str) -> None:
    errors = registry.get("mms.sensor_reading").errors({**READING, **change})
    assert [e["pointer"] for e in errors] == [pointer]


@pytest.mark.parametrize(("change", "pointer"), [
    ({"severity": "info"}, "/severity"), ({"state": "open"}, "/state"), ({"window": {"from_seq": 1}}, "/window"),
    ({"reading_seq": 0}, "/reading_seq")])
def test_a_bad_alert_is_refused_naming_the_field(registry: SchemaRegistry, change: dict[str, Any],
                                                 pointer: str) -> None:
    errors = registry.get("mms.sensor_alert").errors({**ALERT, **change})
    assert pointer in [e["pointer"] for e in errors]
