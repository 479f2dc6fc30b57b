"""The in-memory fast path (issue 17 item 1): same semantics without the coroutines. direct_publish,
delivery by runs (transport.base.DirectRun), the per-record direct callback, the hub's route cache."""

from __future__ import annotations

import gc

import pytest

from forge_core.bus import MessageBus
from forge_core.errors import MessageRejected, Redeliver, TransportClosed
from forge_core.messages.envelope import RawMessage
from forge_core.messages.schemas import SchemaRegistry
from forge_core.transport.codec import TypeBinding
from forge_core.transport.memory import MemoryTransport
from tests.bus.bus_helpers import READING, make_bus, run, settle


def test_fast_path_counts_validates_and_dead_letters_like_the_full_path():
    async def body(clock):
        bus = make_bus(clock)
        seen = []
        failures = iter([ValueError("boom")])

        def handler(envelope):
            if envelope.payload["value"] == 2:
                raise next(failures)
            seen.append(envelope.payload["value"])

        await bus.subscribe("r/#", handler, owner="c")
        transport = bus.transport()
        assert transport.direct_publish is not None  # the bus takes the direct path here
        for value in (1, 2, 3):
            await bus.publish("r/1", "test.reading", {"value": value}, source="s")
        with pytest.raises(MessageRejected):
            await bus.publish("r/1", "test.reading", {"value": "x"}, source="s")
        await settle(bus)
        assert seen == [1, 3]  # in order, the raising one dead-lettered, not redelivered
        assert bus.stats.published["test.reading"] == 3 and bus.stats.handled["test.reading"] == 2
        assert sorted(letter.reason for letter in bus.dead_letters.recent) == ["handler_error", "invalid"]
        assert transport.hub.stats["published"] == 3 and transport.hub.stats["delivered"] == 3
        with pytest.raises(ValueError, match="wildcards"):  # the hub checks each new topic once
            await bus.publish("r/+", "test.reading", {"value": 4}, source="s")
        assert transport.hub.stats["published"] == 3

    run(body)


def test_fast_path_redeliver_and_awaitable_results_and_close():
    async def body(clock):
        bus = make_bus(clock)
        attempts = []
        awaited = []

        def handler(envelope):
            attempts.append(envelope.id)
            if len(attempts) == 1:
                raise Redeliver("not yet")

            async def later():
                awaited.append(envelope.id)

            return later()

        await bus.subscribe("r", handler, owner="c")
        sent = await bus.publish("r", "test.reading", {"value": 1}, source="s")
        await settle(bus)
        assert attempts == [sent.id, sent.id] and awaited == [sent.id]
        assert bus.stats.redeliver == 1 and bus.stats.handled["test.reading"] == 1
        await bus.transport().close()
        assert bus.transport().direct_publish is None and bus.transport().memory_hub is None
        with pytest.raises(TransportClosed):
            await bus.publish("r", "test.reading", {"value": 2}, source="s")

    run(body)


def test_a_memory_transport_subclass_that_changes_publish_gets_it_called():
    calls = []

    class Counting(MemoryTransport):
        async def publish(self, topic, envelope):
            calls.append(topic)
            await super().publish(topic, envelope)

    async def body(clock):
        schemas = SchemaRegistry()
        schemas.add("test.reading", READING)
        bus = MessageBus(schemas=schemas, clock=clock, transports={"bus": Counting("bus")})
        assert bus.transport().direct_publish is None
        await bus.publish("r", "test.reading", {"value": 1}, source="s")
        assert calls == ["r"]

    run(body)


def test_runs_of_mixed_types_keep_order_and_count_each_type_exactly():
    """The hub hands the bus a run of queued messages (transport.base.DirectRun, stop 23): order, the
    types filter and per-type counts are those of one call per message, with raw bytes in between."""
    async def body(clock):
        bus = make_bus(clock, bindings=[TypeBinding("r/raw", type="test.reading")])
        bus.schemas.add("test.other", {"type": "object"})
        seen = []
        await bus.subscribe("r/#", lambda e: seen.append((e.type, e.payload.get("value"))), owner="c",
                            types=["test.reading"])
        transport = bus.transport()
        for value in range(5):
            await bus.publish("r/1", "test.reading" if value != 2 else "test.other",
                              {"value": value}, source="s")
        await transport.publish_raw("r/raw", RawMessage(b'{"value": 9}'))
        await bus.publish("r/1", "test.reading", {"value": 10}, source="s")
        await settle(bus)
        assert seen == [("test.reading", 0), ("test.reading", 1), ("test.reading", 3), ("test.reading", 4),
                        ("test.reading", 9), ("test.reading", 10)]
        published = bus.stats.published
        assert published["test.reading"] == 5 and published["test.other"] == 1  # the raw one was not published
        assert bus.stats.handled["test.reading"] == 6 and bus.stats.handled["test.other"] == 0

    run(body)


def test_an_envelope_published_again_to_another_topic_is_delivered_as_a_copy():
    """The hub sets an envelope's topic once (a queued entry is the bare envelope): publishing the same
    envelope on to another topic must not change what the first topic's subscriber receives."""
    async def body(clock):
        bus = make_bus(clock)
        got = []
        await bus.subscribe("a", lambda e: got.append(("a", e.topic, e.id)), owner="one")
        await bus.subscribe("b", lambda e: got.append(("b", e.topic, e.id)), owner="two")
        sent = await bus.publish("a", "test.reading", {"value": 1}, source="s")
        transport = bus.transport()
        await transport.publish("b", sent)
        await settle(bus)
        assert sorted(got) == [("a", "a", sent.id), ("b", "b", sent.id)]
        assert sent.topic == "a"

    run(body)


def test_direct_callback_of_raw_records_has_on_message_outcomes():
    """``callback.direct`` (transport.base.DirectCallback, what the Kafka subscriber calls per record)
    decodes, validates, dead-letters, filters, counts and hands back Redeliver and awaitables as
    awaiting the callback does: the same records through each give the same results."""
    from forge_core.transport.codec import encode_structured

    def records(bus):
        good = bus.build("test.reading", {"value": 1}, source="m1")
        other = bus.build("test.reading", {"value": 7}, source="m1")
        bad = encode_structured(good).replace(b'"value":1', b'"value":"x"')
        return [
            RawMessage(encode_structured(good)),  # headerless structured: the fast path
            RawMessage(bad),  # structured, invalid: dead-lettered by _admit with the reason
            RawMessage(b'{"value": 2}'),  # plain JSON typed by the binding
            RawMessage(b"\xff"),  # undecodable
            RawMessage(b'{"value": 3}', {"ce_type": "test.reading", "ce_schemaversion": "9"}),  # version
            RawMessage(encode_structured(other)),  # its handler raises: dead-lettered
            RawMessage(b'{"value": 4}'),  # its handler raises Redeliver
            RawMessage(b'{"value": 5}'),  # its handler returns an awaitable
        ]

    async def deliver(clock, direct):
        bus = make_bus(clock, bindings=[TypeBinding("r", type="test.reading")])
        seen, awaited = [], []

        def handler(envelope):
            value = envelope.payload["value"]
            seen.append(value)
            if value == 7:
                raise ValueError("boom")
            if value == 4:
                raise Redeliver("later")
            if value == 5:
                async def finish():
                    awaited.append(value)
                return finish()
            return None

        sub = await bus.subscribe("r", handler, owner="c")
        callback = sub.callback  # type: ignore[attr-defined]
        assert hasattr(callback, "direct")
        redelivered = 0
        for message in records(bus):
            try:
                if direct:
                    pending = callback.direct("r", message)
                    if pending is not None:
                        await pending
                else:
                    await callback("r", message)
            except Redeliver:
                redelivered += 1
            assert message.verdict is not None  # admitted once per delivery
        return (seen, awaited, redelivered, dict(bus.dead_letters.counts), dict(bus.stats.handled),
                bus.stats.redeliver)

    direct = run(lambda clock: deliver(clock, True))
    awaited = run(lambda clock: deliver(clock, False))
    assert direct == awaited
    seen, finished, redelivered, letters, handled, redeliver = direct
    assert seen == [1, 2, 7, 4, 5] and finished == [5] and redelivered == redeliver == 1
    assert letters == {"invalid": 2, "decode_error": 1, "handler_error": 1}
    assert handled == {"test.reading": 3}


def test_a_traced_or_async_handler_has_no_direct_callback():
    async def body(clock):
        bus = make_bus(clock)

        async def handler(envelope):
            return None

        sub = await bus.subscribe("r", handler, owner="c")
        return hasattr(sub.callback, "direct")  # type: ignore[attr-defined]

    assert run(body) is False


def test_an_async_handler_subscribed_after_a_sync_one_ended_gets_no_run_of_it():
    """Compiled by mypyc, a closure object is reused from its type's free instance with the attributes of
    the one before: a sync handler's run and direct must not ride on the on_message closure itself."""
    async def body(clock):
        bus = make_bus(clock)
        seen = []
        sub = await bus.subscribe("r", lambda envelope: seen.append("sync"), owner="a")
        assert hasattr(sub.callback, "run")
        await sub.cancel()
        del sub
        gc.collect()

        async def handler(envelope):
            seen.append("async")

        sub = await bus.subscribe("r", handler, owner="b")
        assert not hasattr(sub.callback, "run") and not hasattr(sub.callback, "direct")
        await bus.publish("r", "test.reading", {"value": 1}, source="s")
        await settle(bus)
        return seen

    assert run(body) == ["async"]


def test_faults_and_groups_added_after_a_topic_is_routed_apply_to_publish():
    """The hub caches each topic's route with whether it takes the slow path (a group, or faults);
    planning or healing faults drops the cache, a group member added updates it."""
    async def body(clock):
        bus = make_bus(clock)
        transport = bus.transport()
        got = []
        await bus.subscribe("r", lambda e: got.append(e.payload["value"]), owner="one")
        await bus.publish("r", "test.reading", {"value": 1}, source="s")  # routed and cached: fast path
        await settle(bus)
        rule = transport.faults.drop("r")
        await bus.publish("r", "test.reading", {"value": 2}, source="s")
        await settle(bus)
        transport.faults.remove(rule)
        await bus.publish("r", "test.reading", {"value": 3}, source="s")
        await settle(bus)
        transport.faults.partition("s")
        await bus.publish("r", "test.reading", {"value": 4}, source="s")
        await settle(bus)
        transport.faults.heal()
        await bus.publish("r", "test.reading", {"value": 5}, source="s")
        await settle(bus)
        assert got == [1, 3, 5]
        assert transport.faults.stats["dropped"] == 1 and transport.faults.stats["partitioned"] == 1
        members = {"a": [], "b": []}
        for name in members:
            await bus.subscribe("r", lambda e, name=name: members[name].append(e.payload["value"]), owner=name,
                                group="g")
        for value in (6, 7, 8, 9):
            await bus.publish("r", "test.reading", {"value": value}, source="s")
        await settle(bus)
        assert got == [1, 3, 5, 6, 7, 8, 9]
        assert sorted(members["a"] + members["b"]) == [6, 7, 8, 9] and len(members["a"]) == len(members["b"]) == 2

    run(body)
