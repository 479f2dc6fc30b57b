"""The message bus: validation where messages enter, dead letters for whatever fails, routes,
trace context across the bus."""

from __future__ import annotations

import asyncio

import pytest

from forge_core.bus import MessageBus, Route, TraceRecorder
from forge_core.clock import VirtualClock
from forge_core.errors import ForgeError, MessageRejected, UnknownMessageType
from forge_core.messages.codec import TypeBinding, encode
from forge_core.messages.envelope import RawMessage
from forge_core.messages.schemas import SchemaRegistry
from forge_core.telemetry import Telemetry
from forge_core.transport.memory import MemoryTransport

READING = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["value"],
           "properties": {"value": {"type": "number"}}, "additionalProperties": False}


def make_bus(clock, *, telemetry=None, bindings=(), transports=("bus",), trace=None) -> MessageBus:
    schemas = SchemaRegistry()
    schemas.add("test.reading", READING)
    made = {name: MemoryTransport(name) for name in transports}
    return MessageBus(schemas=schemas, clock=clock, transports=made, bindings=bindings, telemetry=telemetry,
                      trace=trace)


def run(body):
    clock = VirtualClock()
    try:
        return clock.run(body(clock))
    finally:
        clock.close()


async def settle(bus: MessageBus) -> None:
    for transport in bus.transports.values():
        await transport.drained()


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
        bus = make_bus(clock)
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


def test_trace_context_crosses_the_bus_in_headers():
    telemetry = Telemetry.from_settings(traces_exporter="memory", metrics_exporter="none",
                                        service_name="forge.test")

    async def body(clock):
        bus = make_bus(clock, telemetry=telemetry)
        got = []
        await bus.subscribe("r", got.append, owner="monitor")
        with telemetry.tracer.start_as_current_span("machine tick"):
            await bus.publish("r", "test.reading", {"value": 1}, source="m1")
        await settle(bus)
        return got

    (envelope,) = run(body)
    telemetry.force_flush()
    spans = {span.name: span for span in telemetry.span_exporter.get_finished_spans()}
    assert envelope.headers["traceparent"].startswith("00-")
    publish, handle = spans["publish test.reading"], spans["handle test.reading"]
    assert handle.context.trace_id == publish.context.trace_id == spans["machine tick"].context.trace_id
    assert handle.parent.span_id == publish.context.span_id
    assert handle.attributes["forge.component"] == "monitor"
    telemetry.shutdown()


def test_trace_recorder_digest_depends_on_content_and_order():
    async def body(clock, values):
        recorder = TraceRecorder()
        bus = make_bus(clock, trace=recorder)
        for value in values:
            await bus.publish("r", "test.reading", {"value": value}, source="m1")
        await asyncio.sleep(0)
        return recorder.digest

    def digest(values):
        clock = VirtualClock()
        try:
            return clock.run(body(clock, values))
        finally:
            clock.close()

    assert digest([1, 2]) != digest([2, 1])
    assert digest([1, 2]) != digest([1, 3])
