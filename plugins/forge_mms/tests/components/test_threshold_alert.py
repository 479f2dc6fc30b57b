"""mms.threshold_alert: an alert when a reading leaves its band, rate-limited per sensor."""

from __future__ import annotations

import pytest
from forge_core import ManifestError

from forge_mms import resolve_pointer

RULE = {"type": "mms.threshold_alert", "params": {
    "topics": ["sensors/+"], "types": ["test.reading"], "field": "/values/temperature", "source_field": "/sensor",
    "low": 10.0, "high": 80.0, "alert_type": "test.sensor_alert", "alert_topic": "alerts/{source}",
    "min_interval": 5.0, "payload": {"sensor": "{source}", "value": "{value}", "direction": "{direction}",
                                     "note": "{field} of {source} is {direction}: {value}"}}}


def read(plant, sensor, temperature):
    plant.publish(f"sensors/{sensor}", "test.reading", {"sensor": sensor, "values": {"temperature": temperature}})


def sent(plant):
    return [(e.topic, e.payload) for e in plant.sent("alerts/#")]


def test_alert_on_leaving_the_band_once_per_excursion(mms_plant):
    plant = mms_plant({"rule": RULE})
    read(plant, "oven1", 50.0)
    read(plant, "oven1", 85.0)
    read(plant, "oven1", 90.0)                    # still out: no second alert
    assert sent(plant) == [("alerts/oven1", {"sensor": "oven1", "value": 85.0, "direction": "high",
                                             "note": "/values/temperature of oven1 is high: 85.0"})]
    read(plant, "oven2", 5)
    assert sent(plant)[-1] == ("alerts/oven2", {"sensor": "oven2", "value": 5, "direction": "low",
                                                "note": "/values/temperature of oven2 is low: 5"})
    plant.advance(6)
    read(plant, "oven1", 50.0)
    read(plant, "oven1", 9.0)                     # a new excursion, min_interval passed
    assert sent(plant)[-1][1]["direction"] == "low" and len(sent(plant)) == 3
    rule = plant.component("rule")
    assert rule.report()["alerts"] == 3 and all(check.passed for check in rule.checks())


def test_min_interval_limits_a_flapping_sensor(mms_plant):
    plant = mms_plant({"rule": RULE})
    for value in (90.0, 50.0, 90.0, 50.0, 90.0):
        read(plant, "oven1", value)
        plant.advance(1)
    assert len(sent(plant)) == 1
    assert plant.component("rule").report()["rate_limited"] == 2


def test_repeat_every_while_out_of_band(mms_plant):
    rule = {**RULE, "params": {**RULE["params"], "repeat_every": 10.0}}
    plant = mms_plant({"rule": rule})
    for _ in range(25):
        read(plant, "oven1", 95.0)
        plant.advance(1)
    assert len(sent(plant)) == 3, "at 0, 10 and 20 s"


def test_unreadable_readings_are_skipped_and_counted(mms_plant):
    plant = mms_plant({"rule": RULE})
    plant.publish("sensors/x", "test.reading", {"sensor": "x", "values": {"pressure": 1}})
    plant.publish("sensors/x", "test.reading", {"sensor": "x", "values": {"temperature": "hot"}})
    assert plant.component("rule").report()["unreadable"] == 2 and sent(plant) == []


@pytest.mark.parametrize(("band", "message"), [({"low": None, "high": None}, "needs low, high or both"),
                                               ({"low": 50.0, "high": 10.0}, "is above high")])
def test_a_band_is_needed(mms_plant, band, message):
    rule = {"type": "mms.threshold_alert", "params": {**RULE["params"], **band}}
    with pytest.raises(ManifestError, match=message) as caught:  # found by forge validate, before start
        mms_plant({"rule": rule})
    assert caught.value.problems[0].path == "components.rule.params"


def test_resolve_pointer():
    doc = {"a": {"b/c": [1, {"~d": 2}]}}
    assert resolve_pointer(doc, "/a/b~1c/1/~0d") == 2
    assert resolve_pointer(doc, "") is doc
    with pytest.raises(KeyError, match="'/a/x'"):
        resolve_pointer(doc, "/a/x")


@pytest.mark.parametrize("sensor", ["oven/#", "a+b", "x/y", "nul\x00", "$SYS"])
def test_a_sensor_name_that_is_no_topic_level_is_refused_not_published(mms_plant, sensor):
    """alerts/{source} with a source from the payload: a wildcard or a '/' there is refused with a
    dead letter saying why; the rule goes on alerting for the others."""
    plant = mms_plant({"rule": RULE})
    plant.publish("sensors/x", "test.reading", {"sensor": sensor, "values": {"temperature": 95.0}})
    read(plant, "oven1", 95.0)
    assert sent(plant) == [("alerts/oven1", {"sensor": "oven1", "value": 95.0, "direction": "high",
                                             "note": "/values/temperature of oven1 is high: 95.0"})]
    refused = [d for d in plant.dead_letters if d.reason == "refused"]
    assert len(refused) == 1 and "not a topic level" in refused[0].detail, plant.dead_letters
    assert refused[0].component == "rule"
    assert plant.runtime.supervisors["rule"].state == "running"
