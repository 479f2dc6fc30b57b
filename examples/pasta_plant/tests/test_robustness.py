"""Malformed and unknown messages into every topic of the plant: each one lands in the
dead-letter channel with its reason, and no component crashes."""

from __future__ import annotations

import pytest

TOPICS = ["heartbeats", "productionPlan/assignBlade", "productionPlan/swapBlade", "productionPlan/bladeSwapped",
          "updateManager/killMachine", "sorting/changeFreshAmount", "sorting/freshAmountChanged", "storage/levels",
          "storage/alert", "storage/newBatch", "experiment"]

BAD = {
    "not json": (b"{not json", "decode_error"),
    "unknown title": ({"title": "Bogus", "machineId": 0}, None),
    "wrong field types": ({"title": "x", "machineId": "zero", "bladeType": "C", "change": "up", "freshAmount": -3,
                           "aFresh": "lots"}, "invalid"),
    "empty object": ({}, None),
    "array": ([1, 2, 3], None),
}


@pytest.mark.parametrize("topic", TOPICS)
def test_bad_bodies_are_dead_lettered_and_nothing_crashes(pasta, topic):
    plant = pasta(seed=1)
    plant.advance(15)
    before = len(plant.dead_letters)
    for body, _reason in BAD.values():
        plant.publish_raw(topic, body)
    plant.advance(5)
    letters = plant.dead_letters[before:]
    assert len(letters) == len(BAD), [(d.reason, d.detail) for d in letters]
    assert {d.reason for d in letters} <= {"decode_error", "invalid", "unknown_type"}
    assert letters[0].reason == "decode_error"
    states = {name: s.state for name, s in plant.runtime.supervisors.items()}
    assert set(states.values()) == {"running"}, states
    assert not plant.summary.restarts


def test_an_unbound_topic_under_a_subscribed_prefix_is_dead_lettered(pasta):
    plant = pasta(seed=1)
    plant.publish_raw("productionPlan/unknown", {"hello": 1})  # the monitor listens to productionPlan/#
    assert plant.dead_letters and plant.dead_letters[-1].reason == "decode_error"
