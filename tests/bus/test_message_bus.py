"""The message bus: validation where messages enter, dead letters for whatever fails, routes,
trace context across the bus."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from forge_core.bus import MessageBus, Route, TraceRecorder
from forge_core.clock import VirtualClock
from forge_core.errors import ForgeError, MessageRejected, Redeliver, TransportClosed, UnknownMessageType
from forge_core.messages.envelope import NO_HEADERS, Envelope, RawMessage
from forge_core.messages.schemas import SchemaRegistry
from forge_core.telemetry import Telemetry
from forge_core.transport.codec import TypeBinding, encode
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
        # send() of an envelope with the shared read-only empty headers (NO_HEADERS) gives it a dict too
        await bus.send("r/again", Envelope("test.reading", {"value": 2}, "m1", "x1", 0.0, headers=NO_HEADERS))
        return got

    (envelope,) = run(body)
    assert NO_HEADERS == {}
    telemetry.force_flush()
    spans = {}
    for span in telemetry.span_exporter.get_finished_spans():  # the first of each name (send's publish last)
        spans.setdefault(span.name, span)
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


# -- batches ------------------------------------------------------------------------------------
def test_publish_batch_sends_every_message_in_order_with_one_time_and_keys():
    async def body(clock):
        bus = make_bus(clock)
        got = []
        await bus.subscribe("r", got.append, owner="monitor")
        sent = await bus.publish_batch("r", "test.reading", [{"value": v} for v in range(5)], source="gateway",
                                       keys=["m0", "m1", None, "m1", "m0"])
        await settle(bus)
        return sent, got, bus.stats

    sent, got, stats = run(body)
    assert got == sent and [e.payload["value"] for e in got] == [0, 1, 2, 3, 4]
    assert [e.key for e in sent] == ["m0", "m1", None, "m1", "m0"]
    assert len({e.id for e in sent}) == 5 and len({e.time for e in sent}) == 1
    assert sent[0].time == pytest.approx(1_704_067_200.0)
    assert {e.source for e in sent} == {"gateway"} and stats.published["test.reading"] == 5


def test_publish_batch_with_an_invalid_payload_sends_none_and_names_each_by_index():
    async def body(clock):
        bus = make_bus(clock)
        got = []
        await bus.subscribe("#", got.append, owner="monitor")
        payloads = [{"value": 1}, {"value": "hot"}, {"value": 2}, {"value": 3, "unit": "C"}]
        with pytest.raises(MessageRejected, match=r"batch of 4 'test.reading' from 'gateway': 2 invalid, none sent"
                           ) as caught:
            await bus.publish_batch("r", "test.reading", payloads, source="gateway")
        await settle(bus)
        return got, list(bus.dead_letters.recent), caught.value.errors, bus.stats

    got, letters, errors, stats = run(body)
    assert got == [] and stats.published["test.reading"] == 0
    assert [e["pointer"] for e in errors] == ["[1]/value", "[3]/unit"]
    assert [(d.reason, d.envelope.payload) for d in letters] == [("invalid", {"value": "hot"}),
                                                                  ("invalid", {"value": 3, "unit": "C"})]
    assert "item 1 of a batch" in letters[0].detail


def test_publish_batch_refuses_keys_that_do_not_match_and_unknown_types():
    async def body(clock):
        bus = make_bus(clock)
        with pytest.raises(ValueError, match="1 keys for 2 payloads"):
            await bus.publish_batch("r", "test.reading", [{"value": 1}, {"value": 2}], source="g", keys=["a"])
        with pytest.raises(UnknownMessageType, match=r"test\.unknown"):
            await bus.publish_batch("r", "test.unknown", [{}], source="g")
        assert await bus.publish_batch("r", "test.reading", [], source="g") == []

    run(body)


def test_batch_handler_gets_lists_of_valid_messages_and_invalid_ones_are_dead_lettered():
    async def body(clock):
        bus = make_bus(clock, bindings=[TypeBinding("legacy/+", type="test.reading")])
        batches = []
        await bus.subscribe("legacy/+", batches.append, owner="monitor", batch=True)
        transport = bus.transport()
        good, _ = encode(bus.build("test.reading", {"value": 7}, source="m9"))
        for raw in (RawMessage(b'{"value": 1}'), RawMessage(b'{"value": "x"}'), RawMessage(b"not json"),
                    RawMessage(good), RawMessage(b'{"value": 2}')):
            await transport.publish_raw("legacy/m1", raw)
        await settle(bus)
        return batches, bus.dead_letters, bus.stats

    batches, letters, stats = run(body)
    assert all(isinstance(batch, list) and batch for batch in batches)
    assert [e.payload["value"] for batch in batches for e in batch] == [1, 7, 2]
    assert dict(letters.counts) == {"invalid": 1, "decode_error": 1}
    assert stats.handled["test.reading"] == 3


def test_batch_handler_that_raises_dead_letters_each_message_and_lives_on():
    async def body(clock):
        bus = make_bus(clock)
        handled = []

        async def handler(envelopes):
            if any(e.payload["value"] < 0 for e in envelopes):
                raise ValueError("negative reading in batch")
            handled.extend(e.payload["value"] for e in envelopes)

        await bus.subscribe("r", handler, owner="monitor", batch=True, types=["test.reading"])
        await bus.publish_batch("r", "test.reading", [{"value": 1}, {"value": -1}, {"value": 2}], source="m1")
        await settle(bus)
        await bus.publish_batch("r", "test.reading", [{"value": 3}, {"value": 4}], source="m1")
        await settle(bus)
        return handled, list(bus.dead_letters.recent)

    handled, letters = run(body)
    assert handled == [3, 4]  # the memory transport hands over the queue at once: the first list failed whole
    assert [(d.reason, d.component, d.envelope.payload["value"]) for d in letters] == [
        ("handler_error", "monitor", 1), ("handler_error", "monitor", -1), ("handler_error", "monitor", 2)]
    assert {d.detail for d in letters} == {"ValueError: negative reading in batch (batch of 3)"}


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


def test_publish_batch_is_traced_as_one_span_and_each_message_carries_its_context():
    telemetry = Telemetry.from_settings(traces_exporter="memory", metrics_exporter="none",
                                        service_name="forge.test")

    async def body(clock):
        bus = make_bus(clock, telemetry=telemetry)
        got = []
        await bus.subscribe("r", got.extend, owner="monitor", batch=True)
        await bus.publish_batch("r", "test.reading", [{"value": 1}, {"value": 2}], source="m1")
        await settle(bus)
        return got

    got = run(body)
    telemetry.force_flush()
    spans = telemetry.span_exporter.get_finished_spans()
    (publish,) = [s for s in spans if s.name == "publish test.reading"]
    handles = [s for s in spans if s.name == "handle test.reading"]
    assert publish.attributes["messaging.batch.message_count"] == 2
    assert len(got) == 2 and all(e.headers["traceparent"].split("-")[1] == f"{publish.context.trace_id:032x}"
                                 for e in got)
    assert handles and all(h.context.trace_id == publish.context.trace_id for h in handles)
    telemetry.shutdown()


def test_traced_handlers_that_raise_are_dead_lettered_and_recorded_on_their_span():
    telemetry = Telemetry.from_settings(traces_exporter="memory", metrics_exporter="none",
                                        service_name="forge.test")

    def fails(_):
        raise ValueError("broken handler")

    async def body(clock):
        bus = make_bus(clock, telemetry=telemetry, transports=("one", "many"))
        await bus.subscribe("r", fails, owner="single", transport="one")
        await bus.subscribe("r", fails, owner="batch", transport="many", batch=True)
        await bus.publish("r", "test.reading", {"value": 1}, source="m1", transport="one")
        await bus.publish_batch("r", "test.reading", [{"value": 2}, {"value": 3}], source="m1", transport="many")
        await settle(bus)
        return list(bus.dead_letters.recent), bus.stats

    letters, stats = run(body)
    telemetry.force_flush()
    handles = [s for s in telemetry.span_exporter.get_finished_spans() if s.name == "handle test.reading"]
    assert sorted((d.component, d.envelope.payload["value"], d.detail) for d in letters) == [
        ("batch", 2, "ValueError: broken handler (batch of 2)"),
        ("batch", 3, "ValueError: broken handler (batch of 2)"),
        ("single", 1, "ValueError: broken handler")]
    assert len(handles) == 2 and all(any(e.name == "exception" for e in h.events) for h in handles)  # one a list
    assert sum(stats.handled.values()) == 0
    telemetry.shutdown()


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


# -- the in-memory fast path (issue 17 item 1): same semantics without the coroutines ------------

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
