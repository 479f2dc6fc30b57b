"""The factory simulators on their own, under virtual time: the PMS's messages are published by the test."""

from __future__ import annotations

import itertools

import pytest

FACTORIES = ("factory",)
IDS = ["factory-1", "factory-2", "factory-3", "factory-4"]


def beats(plant, factory_id: str):
    return plant.sent(f"factory/{factory_id}/heartbeat", type="mms.factory_heartbeat")


def times(plant, factory_id: str) -> list[float]:
    return [b.payload["timestamp"] for b in beats(plant, factory_id)]


def mode(plant, factory_id: str, value: str) -> None:
    plant.publish(f"factory/{factory_id}/mode", "industry40.factory_mode", {"factoryId": factory_id, "mode": value})


def assign(plant, factory_id: str, order_id: str, quantity: int = 10, epoch: int | None = 1) -> None:
    body = {"orderId": order_id, "factoryId": factory_id, "productType": "valve", "quantity": quantity,
            "deadline": "2030-01-01T00:00:00Z"}
    if epoch is not None:
        body["epoch"] = epoch
    plant.publish(f"factory/{factory_id}/orders", "sched.order_assigned", body)


def test_four_factories_beat_every_second_with_the_contracts_body(plant40):
    plant = plant40(keep=FACTORIES)
    plant.advance(10.05)
    for fid in IDS:
        got = beats(plant, fid)
        assert len(got) == 10, fid
        gaps = {round(b - a, 3) for a, b in itertools.pairwise(times(plant, fid))}
        assert gaps == {1.0}
        body = got[-1].payload
        assert body["factoryId"] == fid and got[-1].key == fid
        assert set(body["metrics"]) == {"cpu", "memory", "errors"} and body["metrics"]["errors"] == 0
        assert 0 <= body["metrics"]["cpu"] <= 100 and body["latencyMs"] == 20.0
    assert plant.component("factory-0").factory_id == "factory-1"


def test_stop_silences_a_factory_until_recover(plant40):
    plant = plant40(keep=FACTORIES)
    plant.advance(3.05)
    mode(plant, "factory-2", "stop")
    before = len(beats(plant, "factory-2"))
    plant.advance(10)
    assert len(beats(plant, "factory-2")) == before, "a stopped factory does not beat"
    assert len(beats(plant, "factory-1")) == 13
    mode(plant, "factory-2", "recover")
    plant.advance(5)
    assert len(beats(plant, "factory-2")) == before + 5
    assert plant.component("factory-1").mode == "normal"


def test_a_mode_for_another_factory_is_ignored(plant40):
    plant = plant40(keep=FACTORIES)
    plant.publish("factory/factory-1/mode", "industry40.factory_mode", {"factoryId": "factory-3", "mode": "stop"})
    assert plant.component("factory-0").mode == "normal" and plant.component("factory-0").stats["foreign"] == 1


def test_degraded_beats_are_late_by_half_to_three_seconds_and_errors_rise(plant40):
    plant = plant40(keep=FACTORIES, params={"factory": {"modes": {"factory-3": "degraded"}}})
    plant.advance(120)
    stamps = times(plant, "factory-3")
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(gaps) > 20
    assert all(1.5 - 1e-6 <= g <= 4.0 + 1e-6 for g in gaps), "interval + 0.5..3 s"
    assert max(gaps) > 3.0 and min(gaps) < 2.0, "the delay is random over its whole range"
    errors = [b.payload["metrics"]["errors"] for b in beats(plant, "factory-3")]
    assert errors == list(range(1, len(errors) + 1)), "one more error every degraded beat"
    assert all(b.payload["latencyMs"] >= 520 for b in beats(plant, "factory-3"))
    assert len(beats(plant, "factory-1")) == 120


def test_flapping_alternates_silence_and_beats(plant40):
    plant = plant40(keep=FACTORIES)
    start = plant.clock.time()
    mode(plant, "factory-4", "flapping")
    plant.advance(26.05)  # silent 5 s, beating 8 s, silent 5 s, beating 8 s
    offsets = [t - start for t in times(plant, "factory-4")]
    assert offsets and all(5 - 1e-6 <= o <= 13 + 1e-6 or 18 - 1e-6 <= o <= 26 + 1e-6 for o in offsets), offsets
    assert sum(1 for o in offsets if o <= 13 + 1e-6) >= 7 and sum(1 for o in offsets if o > 17) >= 7
    mode(plant, "factory-4", "recover")
    plant.advance(10)
    assert len(times(plant, "factory-4")) >= len(offsets) + 9


def test_an_order_is_made_with_progress_and_completed_after_its_duration(plant40):
    plant = plant40(keep=FACTORIES)
    start = plant.now
    assign(plant, "factory-1", "o1", quantity=10)  # 2 s setup + 10 x 0.5 s = 7 s
    plant.advance(0.01)
    progress = plant.sent("factory/factory-1/progress", type="sched.order_progress")
    assert [p.payload for p in progress] == [{"orderId": "o1", "factoryId": "factory-1", "progress": 0.0}]
    done = plant.expect("sched.order_completed", within=10)
    assert done.payload == {"orderId": "o1", "factoryId": "factory-1"} and done.topic == "factory/factory-1/completed"
    assert plant.now - start == pytest.approx(7.0, abs=0.15)
    values = [p.payload["progress"] for p in plant.sent("factory/factory-1/progress")]
    assert values == sorted(values) and values[-1] < 1.0 and len(values) == 2  # at 0 s and 5 s
    factory = plant.component("factory-0")
    assert factory.stats["completed"] == 1 and not factory.orders


def test_lines_bound_the_orders_started_and_revoked_or_stale_orders_are_not_made(plant40):
    plant = plant40(keep=FACTORIES)
    for i in range(3):
        assign(plant, "factory-2", f"o{i}", quantity=20, epoch=2)  # 12 s each, 2 lines
    factory = plant.component("factory-1")
    assert [o.started for o in factory.orders.values()] == [True, True, False]
    plant.publish("factory/factory-2/orders/revoked", "sched.order_revoked",
                  {"orderId": "o0", "factoryId": "factory-2", "reason": "moved"})
    assert factory.orders["o2"].started, "a freed line starts the waiting order"
    assign(plant, "factory-2", "late", epoch=1)  # a deposed scheduler's assignment
    assign(plant, "factory-2", "o1", quantity=20, epoch=2)  # a redelivery
    plant.advance(30)
    completed = {e.payload["orderId"] for e in plant.sent("factory/factory-2/completed")}
    assert completed == {"o1", "o2"}
    assert factory.stats["stale"] == 1 and factory.stats["duplicates"] == 1 and factory.stats["revoked"] == 1


def test_a_stopped_factory_makes_nothing_and_resumes_on_recover(plant40):
    plant = plant40(keep=FACTORIES)
    assign(plant, "factory-3", "o1", quantity=10)
    plant.advance(3)
    mode(plant, "factory-3", "stop")
    plant.advance(30)
    assert not plant.sent("factory/factory-3/completed")
    mode(plant, "factory-3", "recover")
    plant.expect("sched.order_completed", within=6)


def test_capacity_per_factory_and_over_capacity_is_a_failed_check(plant40):
    plant = plant40(keep=FACTORIES, params={"factory": {"capacity": 2, "capacities": {"factory-4": 1}}})
    f4 = plant.component("factory-3")
    assert (plant.component("factory-0").capacity, f4.capacity) == (2, 1)
    assign(plant, "factory-4", "a")
    assert all(c.passed for c in f4.checks())
    assign(plant, "factory-4", "b")
    assert not f4.checks()[0].passed and f4.report()["over_capacity"] == 1
