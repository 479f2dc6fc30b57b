"""The message bus: validation where messages enter, dead letters for whatever fails, routes,
Redeliver, the envelope publish builds. Batches, tracing and the in-memory fast path have their own
modules (test_batches.py, test_tracing.py, test_memory_fast_path.py); shared helpers: bus_helpers.py."""

from __future__ import annotations

import dataclasses

import pytest

from forge_core.bus import MessageBus, Route
from forge_core.errors import ForgeError, MessageRejected, Redeliver, UnknownMessageType
from forge_core.messages.envelope import NO_HEADERS, Envelope, RawMessage
from forge_core.messages.schemas import SchemaRegistry
from forge_core.telemetry import Telemetry
from forge_core.transport.codec import TypeBinding, encode
from forge_core.transport.memory import MemoryTransport
from tests.bus.bus_helpers import make_bus, run, settle


def test_published_message_reaches_handler_with_envelope_filled_in():
    async def body(clock):
        bus = make_bus(clock)
        got = []
        await bus.subscribe("plant/+/reading", got.append, owner="monitor")
        sent = await bus.publish("plant/m1/reading", "test.reading", {"value": 1.5}, source="m1", key="m1")
        await settle(bus)
        return sent, got, bus.stats

    sent, got, stats = run(body)
    assert got == [sent]
    assert (sent.type, sent.source, sent.key, sent.topic) == ("test.reading", "m1", "m1", "plant/m1/reading")
    assert sent.id and sent.time == pytest.approx(1_704_067_200.0)
    assert stats.published["test.reading"] == 1 and stats.handled["test.reading"] == 1


def test_invalid_publish_raises_and_is_dead_lettered_never_handled():
    async def body(clock):
        bus = make_bus(clock)
        got = []
        await bus.subscribe("#", got.append, owner="monitor")
        with pytest.raises(MessageRejected, match=r"/value: 'hot' is not of type 'number'") as caught:
            await bus.publish("plant/m1/reading", "test.reading", {"value": "hot"}, source="m1")
        await settle(bus)
        return got, list(bus.dead_letters.recent), caught.value.errors

    got, letters, errors = run(body)
    assert got == []
    assert [(d.reason, d.component) for d in letters] == [("invalid", "m1")]
    assert errors == [{"pointer": "/value", "message": "'hot' is not of type 'number'"}]


def test_unknown_type_on_publish_lists_registered_types():
    async def body(clock):
        with pytest.raises(UnknownMessageType, match=r"registered types: .*test.reading"):
            await make_bus(clock).publish("x", "test.unknown", {}, source="m1")

    run(body)


def test_raw_messages_are_decoded_validated_and_dead_lettered_once():
    async def body(clock):
        bus = make_bus(clock, bindings=[TypeBinding("legacy/+", type="test.reading")])
        first, second = [], []
        await bus.subscribe("#", first.append, owner="a")
        await bus.subscribe("#", second.append, owner="b")
        transport = bus.transport()
        await transport.publish_raw("legacy/m1", RawMessage(b'{"value": 2}'))
        await transport.publish_raw("legacy/m1", RawMessage(b'{"value": "x"}'))
        await transport.publish_raw("legacy/m1", RawMessage(b"\xff\xfe"))
        await transport.publish_raw("other", RawMessage(b'{"value": 2}', {"ce_type": "nobody.knows"}))
        body_, headers = encode(await bus.publish("ignored", "test.reading", {"value": 3}, source="m1"))
        await transport.publish_raw("tagged", RawMessage(body_, {**headers, "ce_schemaversion": "9"}))
        await settle(bus)
        return first, second, bus.dead_letters

    first, second, letters = run(body)
    assert [e.payload for e in first] == [{"value": 2}, {"value": 3}] == [e.payload for e in second]
    assert dict(letters.counts) == {"invalid": 2, "decode_error": 1, "unknown_type": 1}
    reasons = {d.reason: d for d in letters.recent}
    assert reasons["decode_error"].body == "\ufffd\ufffd" and reasons["decode_error"].topic == "legacy/m1"
    assert "schema version 9" in next(d for d in letters.recent if d.topic == "tagged").detail


def test_handler_error_goes_to_dead_letters_and_the_subscriber_lives_on():
    async def body(clock):
        bus = make_bus(clock)
        handled = []

        async def handler(envelope):
            if envelope.payload["value"] < 0:
                raise ValueError("negative reading")
            handled.append(envelope.payload["value"])

        await bus.subscribe("r", handler, owner="monitor")
        for value in (1, -1, 2):
            await bus.publish("r", "test.reading", {"value": value}, source="m1")
        await settle(bus)
        return handled, list(bus.dead_letters.recent)

    handled, letters = run(body)
    assert handled == [1, 2]
    (letter,) = letters
    assert (letter.reason, letter.component) == ("handler_error", "monitor")
    assert letter.detail == "ValueError: negative reading"
    assert letter.envelope.payload == {"value": -1}


def test_types_filter_skips_other_types_without_dead_letters():
    async def body(clock):
        bus = make_bus(clock, bindings=[TypeBinding("r/raw", type="test.reading")])
        bus.schemas.add("test.other", {"type": "object"})
        got = []
        await bus.subscribe("#", got.append, owner="m", types=["test.other"])
        await bus.publish("a", "test.reading", {"value": 1}, source="s")
        await bus.publish("a", "test.other", {}, source="s")
        await settle(bus)
        return [e.type for e in got], bus.dead_letters.total

    assert run(body) == (["test.other"], 0)


def test_routes_forward_with_allow_list_and_never_loop():
    async def body(clock):
        bus = make_bus(clock, transports=("edge", "core"))
        bus.schemas.add("test.secret", {"type": "object"})
        await bus.add_route(Route("edge", "core", ["plant/#"], ["test.reading"]))
        await bus.add_route(Route("core", "edge", ["plant/#"]))
        on_core, on_edge = [], []
        await bus.subscribe("plant/#", on_core.append, owner="c", transport="core")
        await bus.subscribe("plant/#", on_edge.append, owner="e", transport="edge")
        await bus.publish("plant/m1", "test.reading", {"value": 1}, source="m1", transport="edge")
        await bus.publish("plant/m1", "test.secret", {}, source="m1", transport="edge")
        for _ in range(5):
            await settle(bus)
        return on_core, on_edge, bus.stats

    on_core, on_edge, stats = run(body)
    assert [e.type for e in on_core] == ["test.reading"]
    assert on_core[0].headers["forgehops"] == "edge"
    assert [e.type for e in on_edge] == ["test.reading", "test.secret"], "not echoed back from core"
    assert stats.forwarded == 1 and stats.refused == 1


def test_unknown_transport_names_the_declared_ones():
    async def body(clock):
        with pytest.raises(ForgeError, match="no transport named 'kafka' in this plant; declared: bus"):
            await make_bus(clock).publish("x", "test.reading", {"value": 1}, source="s", transport="kafka")

    run(body)


def test_publish_goes_to_the_named_transport_the_default_for_none_or_empty_and_a_replaced_one():
    async def body(clock):
        bus = make_bus(clock, transports=("edge", "core"))  # edge is the default (the first added)
        got: dict[str, list[int]] = {"edge": [], "core": []}
        for name in got:
            await bus.subscribe("r", lambda e, name=name: got[name].append(e.payload["value"]), owner=name,
                                transport=name)
        await bus.publish("r", "test.reading", {"value": 1}, source="s", transport="core")
        await bus.publish("r", "test.reading", {"value": 2}, source="s")
        await bus.publish("r", "test.reading", {"value": 3}, source="s", transport="")
        await settle(bus)
        replaced = MemoryTransport("core")  # publish looks the name up each time: the new one
        bus.add_transport(replaced)
        late: list[int] = []
        await bus.subscribe("r", lambda e: late.append(e.payload["value"]), owner="late", transport="core")
        await bus.publish("r", "test.reading", {"value": 4}, source="s", transport="core")
        await settle(bus)
        return got, late

    got, late = run(body)
    assert got == {"edge": [2, 3], "core": [1]} and late == [4]


@pytest.mark.parametrize("traced", [False, True])
@pytest.mark.parametrize("batch", [False, True])
def test_a_handler_raising_redeliver_is_not_dead_lettered_but_handed_back_to_the_transport(batch, traced):
    telemetry = Telemetry.from_settings(traces_exporter="memory") if traced else None

    async def body(clock):
        bus = make_bus(clock, telemetry=telemetry)
        calls: list[int] = []

        async def handler(got):
            calls.append(len(got) if batch else 1)
            if len(calls) <= 2:  # the database is down for two deliveries
                raise Redeliver("database unreachable")

        await bus.subscribe("r", handler, owner="processor", batch=batch)
        await bus.publish("r", "test.reading", {"value": 1}, source="m1")
        await settle(bus)
        return calls, list(bus.dead_letters.recent), bus.stats

    calls, letters, stats = run(body)
    # the memory transport redelivered it (max_redeliveries 3): the third delivery was handled
    assert calls == [1, 1, 1]
    assert letters == []
    assert stats.redeliver == 2 and stats.handled["test.reading"] == 1


def test_a_huge_integer_on_the_wire_is_dead_lettered_not_handled():
    """orjson reads an integer beyond 64 bits as a float: it must not pass an "integer" field."""
    async def body(clock):
        schemas = SchemaRegistry()
        schemas.add("test.beat", {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                                  "required": ["machineId"], "properties": {"machineId": {"type": "integer",
                                                                                          "minimum": 0}}})
        bus = MessageBus(schemas=schemas, clock=clock, transports={"bus": MemoryTransport("bus")},
                         bindings=[TypeBinding("heartbeats", type="test.beat")])
        handled = []
        await bus.subscribe("heartbeats", handled.append, owner="scheduler")
        transport = bus.transport()
        for raw in (b'{"title": "heartbeat", "machineId": 123456789012345678901234567890}',
                    b'{"machineId": 18446744073709551615}', b'{"machineId": 5.0}', b'{"machineId": 5}'):
            await transport.publish_raw("heartbeats", RawMessage(raw))
        await settle(bus)
        return handled, bus.dead_letters

    handled, letters = run(body)
    assert [e.payload["machineId"] for e in handled] == [5]
    assert dict(letters.counts) == {"invalid": 3}
    assert all({e["pointer"] for e in d.errors} == {"/machineId"} for d in letters.recent)


def test_publish_sets_every_field_of_the_envelope_it_builds():
    """publish builds its Envelope without calling the class (message_bus.py): every field is set (an
    unset slot raises AttributeError; this fails if a field is added and publish not told), and the
    result equals the constructor's with the same values."""
    async def body(clock):
        bus = make_bus(clock)
        keyed = await bus.publish("plant/m1/reading", "test.reading", {"value": 2}, source="m1", key="k")
        plain = await bus.publish("r", "test.reading", {"value": 3}, source="m2")
        return keyed, plain

    keyed, plain = run(body)
    for envelope in (keyed, plain):
        assert type(envelope) is Envelope
        assert {f.name: getattr(envelope, f.name) for f in dataclasses.fields(Envelope)}
    assert keyed == Envelope("test.reading", {"value": 2}, "m1", keyed.id, keyed.time, "k", 1, {}, "plant/m1/reading")
    assert plain == Envelope("test.reading", {"value": 3}, "m2", plain.id, plain.time, None, 1, {}, "r")
    # no headers given: the shared read-only empty ones (a dict each cost ~270 instructions a message)
    assert keyed.headers is plain.headers is NO_HEADERS
    assert keyed.id != plain.id and keyed.time == plain.time == pytest.approx(1_704_067_200.0)


def test_publish_takes_its_options_by_keyword_or_in_order():
    """source, key, headers and transport are not keyword-only (a keyword-only default costs a dict
    lookup per call): by keyword, as documented, or in order, the same envelope."""
    async def body(clock):
        bus = make_bus(clock, transports=("bus", "other"))
        got = []
        await bus.subscribe("r", got.append, owner="c", transport="other")
        by_name = await bus.publish("r", "test.reading", {"value": 1}, source="s", key="k",
                                    headers={"h": "1"}, transport="other")
        in_order = await bus.publish("r", "test.reading", {"value": 1}, "s", "k", {"h": "1"}, "other")
        await bus.transport("other").drained()
        return got, by_name, in_order

    got, by_name, in_order = run(body)
    assert got == [by_name, in_order]
    assert (in_order.source, in_order.key, in_order.headers) == (by_name.source, by_name.key, by_name.headers)
    assert [e.topic for e in got] == ["r", "r"]  # with headers too (a route forwards by envelope.topic)
