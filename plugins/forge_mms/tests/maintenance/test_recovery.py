"""Recovery: a DOWN factory is reported UP after 5 consecutive healthy beats, not 4."""

from __future__ import annotations


def statuses(plant):
    return [(e.payload["status"], e.payload["reason"]) for e in plant.sent(type="mms.status_report")]


def test_up_is_reported_after_five_healthy_beats(factory_plant, beats):
    plant = factory_plant()
    beats(plant, 3, "f1")
    plant.advance(5)
    assert [s for s, _ in statuses(plant)] == ["UP", "DEGRADED", "DOWN"]
    beats(plant, 4, "f1")
    assert statuses(plant)[-1][0] == "DOWN", "4 healthy beats: still DOWN"
    beats(plant, 1, "f1")
    assert statuses(plant)[-1] == ("UP", "5 consecutive healthy beats")
    monitor = plant.component("monitor")
    assert monitor.recovery.recoveries == 1 and plant.last("mms.failover_event").payload["outcome"] == "accepted"


def test_an_erroring_beat_restarts_the_count(factory_plant, beats):
    plant = factory_plant()
    beats(plant, 3, "f1")
    plant.advance(5)
    beats(plant, 4, "f1")
    beats.one(plant, "f1", errors=1)  # the cumulative counter rises: a failed beat
    plant.advance(1)
    beats(plant, 4, "f1", errors={"f1": 1})
    assert statuses(plant)[-1][0] == "DOWN"
    beats(plant, 1, "f1", errors={"f1": 1})
    assert statuses(plant)[-1][0] == "UP"
