"""The live tail: bounded per topic and in topics, sampled beyond its per-second budget, and the
status / leadership boards fed from forge.status and forge.leadership messages."""

from __future__ import annotations

import orjson

from forge_core.clock import VirtualClock
from forge_core.dashboard.tail import MessageTail
from forge_core.messages.envelope import Envelope, RawMessage


def envelope(type_: str, payload: object, source: str = "m1") -> Envelope:
    return Envelope(type=type_, payload=payload, source=source)


def test_ring_per_topic_and_topic_bound():
    clock = VirtualClock()
    tail = MessageTail(clock, per_topic=3, topics=2, per_second=1000)
    for i in range(5):
        tail.observe("bus", "a", envelope("t.a", {"i": i}))
    tail.observe("bus", "b", envelope("t.b", {}))
    tail.observe("bus", "c", envelope("t.c", {}))  # a third topic: counted, not kept
    assert [m["body"] for m in tail.messages(topic="a")] == ['{"i":4}', '{"i":3}', '{"i":2}']
    assert tail.counts == {"a": 5, "b": 1, "c": 1} and tail.by_transport["bus"] == 7
    assert "c" not in tail.recent and tail.sampled_out == 1
    clock.close()


def test_sampling_beyond_the_per_second_budget():
    clock = VirtualClock()
    tail = MessageTail(clock, per_topic=1000, per_second=10)
    for i in range(25):
        tail.observe("bus", "fast", envelope("t", {"i": i}))
    assert len(tail.recent["fast"]) == 10 and tail.sampled_out == 15 and tail.counts["fast"] == 25
    clock.close()


def test_filter_and_raw_bodies():
    clock = VirtualClock()
    tail = MessageTail(clock)
    tail.observe("mqtt", "heartbeats", RawMessage(orjson.dumps({"machineId": 7}), {"ce_type": "beat"}))
    tail.observe("mqtt", "other", RawMessage(b"\xff not json"))
    rows = tail.messages(contains="MACHINEID")
    assert len(rows) == 1 and rows[0]["type"] == "beat" and rows[0]["transport"] == "mqtt"
    assert tail.messages(topic="other")[0]["body"].endswith("not json")
    clock.close()


def test_boards_from_status_and_leadership_messages():
    clock = VirtualClock()
    tail = MessageTail(clock)
    tail.observe("bus", "forge/status/m1", envelope("forge.status", {"source": "m1", "status": "DOWN",
                                                                     "monitor": "health", "reason": "silent"}))
    tail.observe("bus", "forge/leader/sched", envelope("forge.leadership", {"lease": "sched", "holder": "s-1",
                                                                            "epoch": 3, "leading": True}))
    tail.observe("bus", "forge/leader/sched", envelope("forge.leadership", {"lease": "sched", "holder": "s-1",
                                                                            "epoch": 3, "leading": False}))
    assert tail.sources["m1"]["status"] == "DOWN"
    assert tail.leases["sched"]["holder"] == "s-1" and tail.leases["sched"]["epoch"] == 3  # a deposition keeps it
    clock.close()
