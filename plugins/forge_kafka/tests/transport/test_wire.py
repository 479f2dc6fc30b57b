"""The wire format: the hot-path encoders write exactly what the plain ones write, and on the broker
each content mode writes its records as documented and every form (old ones included) is read back."""

from __future__ import annotations

import asyncio
import gc
import random
import uuid
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from forge_core import Envelope, IdGenerator, MessageBus, RealClock, format_time
from forge_core.plugin import SchemaRegistry
from forge_core.transport import (
    STRUCTURED_CONTENT_TYPE,
    Decoder,
    TypeBinding,
    encode,
    encode_structured,
    fast_format_time,
)

from forge_kafka import KafkaTransport, to_kafka

from ..conftest import read_topic, wait_until


def test_fast_format_time_is_format_time() -> None:
    rng = random.Random(7)
    samples = [rng.uniform(-1e9, 4e9) for _ in range(20000)]
    samples += [1_795_324_167 + k * 0.0000005 for k in range(20000)]  # every half-microsecond tie
    samples += [0.0, -0.5, -1e-7, 0.9999999999, 1.9999995, 1_704_067_200.123456]
    for epoch in samples:
        assert fast_format_time(epoch) == format_time(epoch), epoch


def test_headers_round_trip_with_and_without_prefix() -> None:
    for prefix in ("ce_", ""):
        sent = Envelope("a.b", {"x": 1}, "m1", "id-1", 1_704_067_200.5, "k", 3, {"traceparent": "00-a-b-01"})
        body, headers = encode(sent, prefix)
        assert headers[f"{prefix}time"] == format_time(sent.time) and headers[f"{prefix}schemaversion"] == "3"
        decoder = Decoder(prefix=prefix, ids=IdGenerator(1), clock_time=lambda: 0.0)
        for _ in range(2):  # the second decode uses the cached header names
            got = decoder.decode("t", body, {**headers, "foreign": "x"} if prefix else headers)
            assert (got.id, got.source, got.type, got.key, got.schema_version, got.time, got.headers) == (
                "id-1", "m1", "a.b", "k", 3, sent.time, {"traceparent": "00-a-b-01"})


def test_the_publishers_joined_event_is_encode_structureds_and_decodes_alike() -> None:
    publisher = KafkaTransport("k", {"bootstrap": "127.0.0.1:1"}).publisher  # encoding needs no broker
    decoder = Decoder(ids=IdGenerator(1), clock_time=lambda: 0.0)
    sent = [
        Envelope("a.b", {"x": [1, {"y": "é"}]}, "m1", "id-1", 1_704_067_200.5, None, 1, {}),
        Envelope("a.b", {"x": 2}, "m1", "id-2", 1_704_067_201.25, "k\"1", 1, {}),  # the head reused
        Envelope("a.b", {"x": 3}, 'm"2\u00e9', "id-3", 1_704_067_202.0, None, 3, {}),  # escaped, version 3
        Envelope("a.b", {"x": 4}, "m1", "id-4", 1_704_067_203.0, "k", 1, {"traceparent": "00-a-b-01"}),  # whole
    ]
    for envelope in sent:
        body = publisher.encode(envelope)
        assert body.startswith(b'{"specversion"')  # the receivers' fast path (MessageBus.on_batch)
        assert orjson.loads(body) == orjson.loads(encode_structured(envelope))
        got = decoder.decode("t", body, {})
        assert (got.id, got.source, got.type, got.key, got.schema_version, got.time, got.payload, got.headers) == (
            envelope.id, envelope.source, envelope.type, envelope.key, envelope.schema_version, envelope.time,
            envelope.payload, envelope.headers)


def test_the_bus_publishes_directly_unless_a_subclass_changed_publish() -> None:
    assert KafkaTransport("k", {"bootstrap": "127.0.0.1:1"}).direct_publish is not None

    class Counting(KafkaTransport):
        async def publish(self, topic: str, envelope: Envelope) -> None:
            await super().publish(topic, envelope)

    assert Counting("k", {"bootstrap": "127.0.0.1:1"}).direct_publish is None  # the bus awaits its publish



def test_each_headerless_record_carries_its_place_in_publish_order_to_its_failure_report() -> None:
    """The default path's delivery callback holds the record's place (one order with the slow
    path's); a failure report through it reaches ``on_failed`` with that place and no headers, so a
    replaced producer's records are re-sent in publish order. No broker: a recording producer."""
    from forge_kafka.transport.publisher import report_type

    transport = KafkaTransport("k", {"bootstrap": "127.0.0.1:1"})
    publisher = transport.publisher
    sent: list[tuple[Any, ...]] = []

    class Recording:
        def produce(self, *args: Any, **kwargs: Any) -> None:
            sent.append(args)

    transport.connection.producer = Recording()  # type: ignore[assignment]
    events = [Envelope("t.n", {"n": n}, f"m{n}", f"id-{n}", 1.5, None, 1, {}) for n in range(4)]
    assert publisher.direct_publish("a/b", events[0]) is None
    assert next(publisher._seq) == 1  # the slow path's produce() takes its place from the same order
    asyncio.run(publisher.publish_batch("a/b", events[1:]))
    places = [args[4] for args in sent]
    assert [place.place for place in places] == [0, 2, 3, 4] and all(callable(place) for place in places)
    # nothing for the collector to walk while records are in flight (the int subclass it was is tracked)
    assert not any(gc.is_tracked(place) for place in places)
    assert transport.health().stats["published"] == 4  # counted apart from the stats Counter, shown by health()
    failed: list[tuple[Any, ...]] = []
    publisher._failed = lambda *args: failed.append(args)  # type: ignore[method-assign]
    report = report_type(publisher._failed)(7)
    report("an error", "a message")
    assert failed == [(None, 7, "an error", "a message")] and type(failed[0][1]) is int


# -- content modes on the broker -------------------------------------------------------------------
SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def _bus(**transports: Any) -> MessageBus:
    schemas = SchemaRegistry()
    schemas.add("test.reading", SCHEMA)
    bindings = [TypeBinding(topic="#", type="test.reading")]  # a plain JSON record is typed by its topic
    return MessageBus(schemas=schemas, clock=RealClock(), transports=transports, bindings=bindings)


def _attributes(envelope: Envelope) -> tuple[Any, ...]:
    return envelope.type, envelope.source, envelope.id, envelope.key, envelope.payload, round(envelope.time, 6)


@pytest.mark.servers
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("mode", "mark"), [("structured", False), ("structured", True), ("binary", False)])
def test_each_content_mode_writes_its_wire_format_and_a_forge_handler_reads_it(
        make_transport: Any, kafka_bootstrap: str, mode: str, mark: bool) -> None:
    """The default (structured, no header), structured with the content-type header, and binary
    (ce_* headers): what is on the broker, and the same envelopes at a per-message and a batch
    handler on another transport."""
    topic = f"wire{uuid.uuid4().hex[:6]}/m1/reading"
    sent = [Envelope("test.reading", {"n": n}, "m1", f"id-{n}", 1_704_067_200.5 + n, "k1" if n % 2 else None, 1, {})
            for n in range(6)]

    async def body() -> tuple[list[Envelope], list[Envelope]]:
        out = make_transport("out", content_mode=mode, content_type_header=mark)
        into = make_transport("in")
        bus = _bus(out=out, into=into)
        await out.connect()
        await into.connect()
        one: list[Envelope] = []
        many: list[Envelope] = []
        await bus.subscribe(topic, one.append, owner="one", transport="into")
        await bus.subscribe(topic, many.extend, owner="many", transport="into", batch=True)
        for envelope in sent[:3]:
            await out.publish(topic, envelope)
        await out.publish_batch(topic, sent[3:])
        await wait_until(lambda: len(one) == len(many) == len(sent), timeout=60)
        assert bus.dead_letters.total == 0, bus.dead_letters.counts
        await into.close()
        await out.close()
        return one, many

    one, many = asyncio.run(body())
    assert [_attributes(e) for e in one] == [_attributes(e) for e in many] == [_attributes(e) for e in sent]
    for record in read_topic(kafka_bootstrap, to_kafka(topic), len(sent)):
        headers = dict(record.headers() or [])
        if mode == "binary":  # the bare payload, the attributes in ce_ headers
            assert orjson.loads(record.value()) in [e.payload for e in sent]
            assert headers["ce_type"] == b"test.reading" and headers["ce_id"] in {e.id.encode() for e in sent}
        else:  # one CloudEvents JSON document; a header only when asked for
            event = orjson.loads(record.value())
            assert event["specversion"] == "1.0" and event["type"] == "test.reading" and "n" in event["data"]
            assert headers == ({"content-type": STRUCTURED_CONTENT_TYPE.encode()} if mark else {})


@pytest.mark.servers
@pytest.mark.timeout(120)
def test_records_of_every_form_on_one_topic_decode_alike(kafka_bootstrap: str, make_transport: Any) -> None:
    """Interop: records written before headerless structured mode was the default (content-type
    header), binary mode's, today's default, a CloudEvents event from a foreign producer (attributes
    in another order, no header) and a plain JSON record (typed by the binding) all reach a Forge
    handler, per message and in batches; nothing is dead-lettered."""
    topic = f"mix{uuid.uuid4().hex[:6]}/m1/reading"
    kafka_topic = to_kafka(topic)
    marked = Envelope("test.reading", {"n": 0}, "old", "id-0", 1_704_067_200.25, None, 1, {})
    binary = Envelope("test.reading", {"n": 1}, "bin", "id-1", 1_704_067_201.25, "k", 1, {})
    foreign = {"data": {"n": 3}, "type": "test.reading", "id": "id-3", "source": "sdk", "specversion": "1.0",
               "time": "2024-01-01T00:00:03.250000Z"}

    async def body() -> tuple[list[Envelope], list[Envelope]]:
        into = make_transport("in")
        bus = _bus(into=into)
        await into.connect()
        await into.ensure_topic(topic)
        one: list[Envelope] = []
        many: list[Envelope] = []
        await bus.subscribe(topic, one.append, owner="one", transport="into")
        await bus.subscribe(topic, many.extend, owner="many", transport="into", batch=True)
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        body_, headers = encode(binary)
        records: list[tuple[bytes, Any]] = [
            (encode_structured(marked), [("content-type", STRUCTURED_CONTENT_TYPE)]),
            (body_, headers),
            (encode_structured(Envelope("test.reading", {"n": 2}, "new", "id-2", 1_704_067_202.25, None, 1, {})),
             None),
            (orjson.dumps(foreign), None),
            (b'{"n": 4}', None),
        ]
        for value, record_headers in records:
            producer.produce(kafka_topic, value, b"m1", headers=record_headers)
        assert producer.flush(10) == 0
        await wait_until(lambda: len(one) == len(many) == len(records), timeout=60)
        assert bus.dead_letters.total == 0, bus.dead_letters.counts
        await into.close()
        return one, many

    one, many = asyncio.run(body())
    for got in (one, many):
        assert [(e.payload["n"], e.source, e.id) for e in got][:4] == [
            (0, "old", "id-0"), (1, "bin", "id-1"), (2, "new", "id-2"), (3, "sdk", "id-3")]
        assert got[4].payload == {"n": 4} and got[4].type == "test.reading" and got[4].source == f"topic:{topic}"
        assert got[1].key == "k" and got[3].time == 1_704_067_203.25
