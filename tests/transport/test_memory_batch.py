"""The in-memory transport's subscribe_batch: the queue at once, in lists of one topic; a list that
raises goes back whole, first in the queue; per-message redelivery limits and undeliverable reports
as on the per-message path; order per key through all of it."""

from __future__ import annotations

import asyncio
import random

import pytest

from forge_core.builtin.core import _memory_factory
from forge_core.bus import MessageBus
from forge_core.clock import VirtualClock
from forge_core.errors import Redeliver, SettingsError
from forge_core.messages.envelope import Envelope
from forge_core.messages.schemas import SchemaRegistry
from forge_core.transport.memory import MemorySettings, MemoryTransport


def env(n: int, key: str = "k") -> Envelope:
    return Envelope(type="t", payload={"n": n}, source="s", id=str(n), key=key)


def numbers(batch: list) -> list[int]:
    return [m.payload["n"] for m in batch]


def test_a_batch_subscriber_gets_the_whole_queue_at_once_split_where_the_topic_changes():
    async def body() -> list[tuple[str, list[int]]]:
        transport = MemoryTransport()
        got: list[tuple[str, list[int]]] = []

        async def callback(topic: str, messages: list) -> None:
            got.append((topic, numbers(messages)))

        await transport.subscribe_batch("plant/#", callback)
        for n, topic in enumerate(["plant/a"] * 3 + ["plant/b"] * 2 + ["plant/a"]):
            await transport.publish(topic, env(n))
        await transport.drained()
        for n in range(6, 106):  # published while nothing runs: one list
            await transport.publish("plant/a", env(n))
        await transport.drained()
        assert transport.hub.stats == {"published": 106, "delivered": 106, "redelivered": 0, "undeliverable": 0}
        return got

    got = asyncio.run(body())
    assert got == [("plant/a", [0, 1, 2]), ("plant/b", [3, 4]), ("plant/a", [5]), ("plant/a", list(range(6, 106)))]


def test_a_list_that_raises_comes_back_whole_and_first_with_what_queued_behind_it():
    async def body() -> tuple[list[list[int]], dict[str, int]]:
        transport = MemoryTransport()
        got: list[list[int]] = []

        async def callback(topic: str, messages: list) -> None:
            got.append(numbers(messages))
            if len(got) == 1:
                await transport.publish("r", env(3))  # arrives while the first list is in the handler
                raise Redeliver("database unreachable")

        await transport.subscribe_batch("r", callback)
        for n in range(3):
            await transport.publish("r", env(n))
        await transport.drained()
        return got, transport.hub.stats

    got, stats = asyncio.run(body())
    assert got == [[0, 1, 2], [0, 1, 2, 3]]  # as Kafka refetches from the first record not handled
    assert stats == {"published": 4, "delivered": 4, "redelivered": 3, "undeliverable": 0}


def test_each_message_of_a_list_that_always_raises_is_reported_undeliverable_after_its_redeliveries():
    async def body() -> tuple[list[list[int]], list[tuple[str, int, str]], dict[str, int]]:
        transport = MemoryTransport(max_redeliveries=2)
        got: list[list[int]] = []
        reported: list[tuple[str, int, str]] = []
        transport.on_undeliverable = lambda topic, message, exc: reported.append(
            (topic, message.payload["n"], str(exc)))

        async def callback(topic: str, messages: list) -> None:
            got.append(numbers(messages))
            if 0 in numbers(messages):
                raise ValueError("poison")

        await transport.subscribe_batch("r", callback)
        await transport.publish("r", env(0))
        await transport.publish("r", env(1))
        await transport.drained()
        await transport.publish("r", env(2))  # the subscription lives on
        await transport.drained()
        return got, reported, transport.hub.stats

    got, reported, stats = asyncio.run(body())
    assert got == [[0, 1], [0, 1], [0, 1], [2]]
    assert reported == [("r", 0, "poison"), ("r", 1, "poison")]
    assert stats == {"published": 3, "delivered": 1, "redelivered": 4, "undeliverable": 2}


def test_a_batch_subscriber_in_a_group_gets_its_share_and_a_cancelled_one_nothing_more():
    async def body() -> tuple[list[int], list[int], list[int]]:
        transport = MemoryTransport()
        a: list[int] = []
        b: list[int] = []

        def into(target: list[int]):
            async def callback(topic: str, messages: list) -> None:
                target.extend(numbers(messages))
            return callback

        sub_a = await transport.subscribe_batch("r", into(a), group="g")
        await transport.subscribe_batch("r", into(b), group="g")
        for n in range(6):
            await transport.publish("r", env(n))
        await transport.drained()
        await sub_a.cancel()
        for n in range(6, 8):
            await transport.publish("r", env(n))
        await transport.drained()
        return a, b, sorted(a + b)

    a, b, everything = asyncio.run(body())
    assert (a, b) == ([0, 2, 4], [1, 3, 5, 6, 7])
    assert everything == list(range(8))


def test_order_per_key_holds_through_random_redeliveries_on_the_bus():
    """Through the bus on a virtual clock: a handler that asks for redelivery at random; every
    reading is handled, the last handled delivery of each key in publish order, none dead-lettered."""
    schemas = SchemaRegistry()
    schemas.add("test.reading", {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}})
    rng = random.Random(3)

    async def body(clock: VirtualClock) -> tuple[dict[str, list[int]], list[int], int, int]:
        bus = MessageBus(schemas=schemas, clock=clock, transports={"bus": MemoryTransport("bus", max_redeliveries=50)})
        handled: dict[str, list[int]] = {}
        sizes: list[int] = []

        def handler(envelopes: list[Envelope]) -> None:
            sizes.append(len(envelopes))
            if rng.random() < 0.3:
                raise Redeliver("not yet")
            for e in envelopes:
                handled.setdefault(e.key or "", []).append(e.payload["n"])

        await bus.subscribe("r/#", handler, owner="processor", batch=True)
        for n in range(200):
            await bus.publish("r/x", "test.reading", {"n": n}, source="m", key=f"k{n % 7}")
            if n % 13 == 0:
                await clock.sleep(0.1)  # some lists are cut by time, not only by what was queued
        await bus.transport().drained()
        return handled, sizes, len(list(bus.dead_letters.recent)), bus.stats.redeliver

    clock = VirtualClock()
    try:
        handled, sizes, letters, redelivered = clock.run(body(clock))
    finally:
        clock.close()
    assert letters == 0 and redelivered > 0
    assert max(sizes) > 1
    for key, seen in handled.items():
        expected = [n for n in range(200) if f"k{n % 7}" == key]
        assert seen == expected, key


def test_batch_wait_lets_what_arrives_within_it_join_the_first_list_on_the_loop_clock():
    async def body(clock: VirtualClock) -> tuple[list[tuple[float, list[int]]], int]:
        transport = MemoryTransport(batch_wait=2.0)
        got: list[tuple[float, list[int]]] = []

        async def callback(topic: str, messages: list) -> None:
            got.append((clock.time() - start, numbers(messages)))

        await transport.subscribe_batch("r", callback)
        start = clock.time()
        for n, at in enumerate([0.0, 0.5, 1.5, 3.0, 3.1]):
            await clock.sleep(at - (clock.time() - start))
            await transport.publish("r", env(n))
        await transport.drained()  # moves the clock through the wait
        return got, transport.hub.pending()

    clock = VirtualClock()
    try:
        got, pending = clock.run(body(clock))
    finally:
        clock.close()
    assert got == [(2.0, [0, 1, 2]), (5.0, [3, 4])]
    assert pending == 0


def test_batch_wait_comes_from_the_transport_settings_and_a_negative_one_is_refused():
    transport = _memory_factory("bus", MemorySettings.model_validate({"batch_wait": 1.5}), None)  # type: ignore[arg-type]
    assert transport.batch_wait == 1.5
    with pytest.raises((SettingsError, ValueError), match="batch_wait"):
        MemorySettings.model_validate({"batch_wait": -1})
