"""Partition events, assignment and lag per partition of Kafka subscriptions, on a real broker:
two members of one group share a 3-partition topic, one leaves, the other takes everything;
lag rises while a handler holds the consumer and drains after; a listener that raises is logged
and delivery goes on."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from forge_core import RawMessage
from forge_core.transport import PartitionChange

from forge_kafka import KafkaSubscription, KafkaTransport

from ..conftest import FAST, envelope, payload_of, wait_until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(240)]


def transport(bootstrap: str, plant: str, topic: str, **settings: Any) -> KafkaTransport:
    return KafkaTransport("kafka", {"bootstrap": bootstrap, **FAST, "topics": {topic: {"partitions": 3}},
                                    **settings}, plant=plant)


def partitions(changes: list[PartitionChange], kind: str) -> set[tuple[str, int]]:
    return {tp for change in changes if change.kind == kind for tp in change.partitions}


async def publish_keys(sender: KafkaTransport, topic: str, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        await sender.publish(topic, envelope({"n": n}, key=f"sensor-{n % 12}"))
    assert await sender.flush() == 0


def test_two_members_split_three_partitions_and_the_survivor_takes_all_when_one_leaves(kafka_bootstrap: str) -> None:
    topic = f"parts{uuid.uuid4().hex[:6]}"
    plant = f"t{uuid.uuid4().hex[:6]}"
    every = {(topic, 0), (topic, 1), (topic, 2)}

    async def main() -> None:
        a, b = transport(kafka_bootstrap, plant, topic), transport(kafka_bootstrap, plant, topic)
        await a.connect()
        await b.connect()
        seen: dict[str, list[int]] = {"a": [], "b": []}
        a_changes: list[PartitionChange] = []
        b_changes: list[PartitionChange] = []

        def handler(who: str) -> Any:
            async def handle(topic_: str, message: Any) -> None:
                assert isinstance(message, RawMessage)
                seen[who].append(payload_of(topic_, message)["n"])
            return handle

        try:
            sub_a = await a.subscribe(topic, handler("a"), group="processors")
            sub_a.on_partitions_changed(a_changes.append)  # no await since subscribe(): hears the first assignment
            await wait_until(lambda: set(sub_a.assignment()) == every, 60)
            assert a_changes[0] == PartitionChange("assigned", a.group_id(topic, "processors", None),
                                                   tuple(sorted(every)))

            sub_b = await b.subscribe(topic, handler("b"), group="processors")
            sub_b.on_partitions_changed(b_changes.append)
            await wait_until(lambda: bool(sub_b.assignment()) and len(sub_a.assignment()) < 3, 60)
            held_a, held_b = set(sub_a.assignment()), set(sub_b.assignment())
            assert held_a | held_b == every and not held_a & held_b, (held_a, held_b)
            # cooperative-sticky: A gave up only what B took, and both heard of it
            await wait_until(lambda: partitions(a_changes, "revoked") == held_b, 10)
            assert partitions(b_changes, "assigned") == held_b
            assert all(change.group == a_changes[0].group for change in a_changes + b_changes)

            await publish_keys(a, topic, 60)
            await wait_until(lambda: len(seen["a"]) + len(seen["b"]) >= 60, 60)
            assert seen["a"] and seen["b"], "both members handled records"

            await sub_b.cancel()  # leaves the group: B hears its partitions revoked before cancel() returns
            assert partitions(b_changes, "revoked") == held_b
            await wait_until(lambda: set(sub_a.assignment()) == every, 60)
            await wait_until(lambda: partitions(a_changes, "assigned") == every, 10)
            assert [c.kind for c in a_changes] == ["assigned", "revoked", "assigned"], a_changes
            assert set(a_changes[-1].partitions) == held_b

            await publish_keys(a, topic, 30, start=60)
            await wait_until(lambda: len(seen["a"]) + len(seen["b"]) >= 90, 60)
            assert sorted(seen["a"] + seen["b"]) == list(range(90))
            stats = a.connection.stats
            assert stats["partitions_assigned"] == 3 + len(held_b) and stats["partitions_revoked"] == len(held_b)
        finally:
            await b.close()
            await a.close()

    asyncio.run(main())


def test_lag_per_partition_rises_while_the_handler_holds_the_consumer_and_drains(kafka_bootstrap: str) -> None:
    topic = f"lag{uuid.uuid4().hex[:6]}"

    async def main() -> None:
        kafka = transport(kafka_bootstrap, f"t{uuid.uuid4().hex[:6]}", topic)
        await kafka.connect()
        gate = asyncio.Event()
        handled: list[int] = []

        async def handle(topic_: str, messages: list[Any]) -> None:
            await gate.wait()  # the first batch holds the consumer until the test opens the gate
            handled.extend(payload_of(topic_, m)["n"] for m in messages)

        try:
            sub = await kafka.subscribe_batch(topic, handle, group="slow")
            assert isinstance(sub, KafkaSubscription)
            await wait_until(lambda: len(sub.assignment()) == 3, 60)
            await publish_keys(kafka, topic, 1)  # the batch that holds the consumer
            await wait_until(lambda: sub.lag() is not None and sum(sub.lag().values()) == 0 and
                             sub.connection.stats["consumed"] >= 1, 30)
            await publish_keys(kafka, topic, 60, start=1)
            await wait_until(lambda: sum((sub.lag() or {}).values()) == 60, 30)
            behind = sub.lag()
            assert behind is not None and set(behind) <= set(sub.assignment())
            assert sum(1 for lag in behind.values() if lag > 0) >= 2, behind  # 12 keys spread over partitions
            assert kafka.health().stats["lag"] == 60
            gate.set()
            await wait_until(lambda: len(handled) == 61, 60)
            await wait_until(lambda: set((sub.lag() or {}).values()) == {0} and len(sub.lag() or {}) == 3, 30)
        finally:
            gate.set()
            await kafka.close()

    asyncio.run(main())


def test_a_listener_that_raises_is_logged_and_delivery_goes_on(kafka_bootstrap: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    topic = f"bad{uuid.uuid4().hex[:6]}"

    async def main() -> list[PartitionChange]:
        kafka = transport(kafka_bootstrap, f"t{uuid.uuid4().hex[:6]}", topic)
        await kafka.connect()
        handled: list[int] = []
        heard: list[PartitionChange] = []

        def broken(change: PartitionChange) -> None:
            raise RuntimeError("listener bug")

        async def handle(topic_: str, message: Any) -> None:
            handled.append(payload_of(topic_, message)["n"])

        try:
            sub = await kafka.subscribe(topic, handle, group="g")
            sub.on_partitions_changed(broken)
            sub.on_partitions_changed(heard.append)
            await wait_until(lambda: len(sub.assignment()) == 3, 60)
            await publish_keys(kafka, topic, 20)
            await wait_until(lambda: len(handled) == 20, 60)
        finally:
            await kafka.close()
        return heard

    with caplog.at_level(logging.ERROR, logger="forge.transport"):
        heard = asyncio.run(main())
    assert [c.kind for c in heard] == ["assigned", "revoked"]  # the second listener still heard both
    failures = [r for r in caplog.records if "partition listener" in r.getMessage()]
    assert len(failures) == 2
    text = failures[0].getMessage()
    assert "broken" in text and repr(topic) in text and "assigned" in text and heard[0].group in text


def test_a_member_stuck_past_max_poll_interval_loses_its_partitions_to_the_other(kafka_bootstrap: str) -> None:
    """The consumer-loss case in one process: A's handler holds its poll thread past
    ``max.poll.interval.ms`` (2 s here), librdkafka makes it leave the group, B is assigned all
    three partitions and gets the record A was handling again (not committed); A hears ``lost``."""
    topic = f"lost{uuid.uuid4().hex[:6]}"
    plant = f"t{uuid.uuid4().hex[:6]}"
    every = {(topic, 0), (topic, 1), (topic, 2)}

    async def main() -> None:
        a = transport(kafka_bootstrap, plant, topic, max_poll_interval_ms=2000)
        b = transport(kafka_bootstrap, plant, topic, max_poll_interval_ms=2000)
        await a.connect()
        await b.connect()
        gate = asyncio.Event()
        got: dict[str, list[int]] = {"a": [], "b": []}
        a_changes: list[PartitionChange] = []
        b_changes: list[PartitionChange] = []

        def handler(who: str) -> Any:
            async def handle(topic_: str, message: Any) -> None:
                got[who].append(payload_of(topic_, message)["n"])
                if who == "a":
                    await gate.wait()
            return handle

        try:
            sub_a = await a.subscribe(topic, handler("a"), group="g")
            sub_a.on_partitions_changed(a_changes.append)
            await wait_until(lambda: set(sub_a.assignment()) == every, 60)
            sub_b = await b.subscribe(topic, handler("b"), group="g")
            sub_b.on_partitions_changed(b_changes.append)
            await wait_until(lambda: bool(sub_b.assignment()), 60)
            held_a = set(sub_a.assignment())
            # a record on one of A's partitions: A takes it and its handler hangs
            n = 0
            while True:
                await a.publish(topic, envelope({"n": n}, key=f"probe-{n}"))
                assert await a.flush() == 0
                await wait_until(lambda n=n: len(got["a"]) + len(got["b"]) > n, 30)
                if got["a"]:
                    break
                n += 1
            stuck = got["a"][0]
            await wait_until(lambda: set(sub_b.assignment()) == every, 60)  # A left the group, B took all
            assert partitions(b_changes, "assigned") == every
            await wait_until(lambda: stuck in got["b"], 30)  # not committed by A: delivered again on B
            gate.set()
            await wait_until(lambda: any(c.kind == "lost" for c in a_changes), 30)
            assert set(next(c for c in a_changes if c.kind == "lost").partitions) == held_a
            assert a.connection.stats["partitions_lost"] == len(held_a)
        finally:
            gate.set()
            await b.close()
            await a.close()

    asyncio.run(main())
