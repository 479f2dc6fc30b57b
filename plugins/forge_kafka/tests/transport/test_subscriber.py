"""Delivery: redelivery then the dead-letter topic, batch subscriptions and offsets after the callback."""

from __future__ import annotations

import asyncio
import gc
import uuid
from typing import Any

import orjson
import pytest
from forge_core import Envelope, RawMessage

from forge_kafka import to_kafka
from forge_kafka.transport import DLQ_ERROR, DLQ_REASON, DLQ_TOPIC

from ..conftest import envelope, read_topic, wait_until

pytestmark = pytest.mark.timeout(120)



@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_failing_handler_is_retried_then_dead_lettered_with_reason_and_committed(make_transport: Any,
                                                                                 kafka_bootstrap: str,
                                                                                 mode: str) -> None:
    topic = f"dlq{uuid.uuid4().hex[:6]}/m1/reading"
    calls: list[str] = []

    async def handler(topic_: str, message: Envelope | RawMessage) -> None:
        calls.append(topic_)
        assert isinstance(message, RawMessage)
        if b"poison" in message.body:
            raise RuntimeError("cannot handle poison")

    async def body() -> tuple[dict[str, Any], int]:
        transport = make_transport(max_redeliveries=2, content_mode=mode)
        await transport.connect()
        await transport.subscribe(topic, handler, owner="worker")
        await transport.publish(topic, envelope({"poison": True}))
        await transport.publish(topic, envelope({"fine": True}))
        await wait_until(lambda: transport.health().stats.get("dead_lettered") == 1 and len(calls) == 4)
        stats = dict(transport.health().stats)
        await transport.close()
        return stats, len(calls)

    stats, count = asyncio.run(body())
    assert count == 4  # poison: 1 + 2 redeliveries; fine: 1
    assert stats["redelivered"] == 2 and stats["undeliverable"] == 1 and stats["handled"] == 1
    records = read_topic(kafka_bootstrap, to_kafka(topic) + ".dlq", 1)
    record = records[0] if records else None
    assert record is not None
    headers = {k: v.decode() for k, v in record.headers()}
    assert headers[DLQ_REASON] == "undeliverable" and "cannot handle poison" in headers[DLQ_ERROR]
    assert headers[DLQ_TOPIC] == to_kafka(topic)
    if mode == "binary":  # the record as it was: plain JSON value, attributes in ce_ headers
        assert record.value() == b'{"poison":true}' and headers["ce_type"] == "test.reading"
    else:  # one CloudEvents JSON document, as it was: no header (the default), only the dead letter's own
        event = orjson.loads(record.value())
        assert event["data"] == {"poison": True} and event["type"] == "test.reading"
        assert "content-type" not in headers and not any(name.startswith("ce_") for name in headers)

    assert stats["consumed"] == 2  # the poison record did not block the one behind it


def test_batch_subscription_gets_fetched_runs_in_order_and_commits_after_the_callback(make_transport: Any) -> None:
    topic = f"batch{uuid.uuid4().hex[:6]}/m1/reading"
    runs: list[list[int]] = []

    async def on_batch(topic_: str, messages: list[Envelope | RawMessage]) -> None:
        assert topic_ == topic
        runs.append([orjson.loads(m.body)["data"]["n"] for m in messages])  # type: ignore[union-attr]

    async def body() -> list[int]:
        transport = make_transport(batch_size=100)
        await transport.connect()
        await transport.publish_batch(topic, [envelope({"n": n}, key="m1") for n in range(300)])
        assert await transport.flush() == 0
        await transport.subscribe_batch(topic, on_batch, owner="worker")  # the backlog arrives in runs
        await wait_until(lambda: sum(map(len, runs)) >= 300)
        await transport.close()
        again = make_transport()
        again.plant = transport.plant  # the same consumer group
        await again.connect()
        late: list[int] = []

        async def after(topic_: str, messages: list[Envelope | RawMessage]) -> None:
            late.append(len(messages))

        await again.subscribe_batch(topic, after, owner="worker")
        await again.publish(topic, envelope({"n": 300}, key="m1"))
        await wait_until(lambda: sum(late) >= 1)
        await asyncio.sleep(1.0)
        await again.close()
        return late

    late = asyncio.run(body())
    assert [n for run in runs for n in run] == list(range(300))
    assert max(map(len, runs)) > 1 and max(map(len, runs)) <= 100  # batch_size bounds a fetch
    assert late == [1]  # the group's committed offset is past the first 300: only the new record


def test_failing_batch_is_redelivered_whole_then_each_record_dead_lettered(make_transport: Any,
                                                                            kafka_bootstrap: str) -> None:
    topic = f"bdlq{uuid.uuid4().hex[:6]}/m1/reading"
    calls: list[list[bytes]] = []

    async def on_batch(topic_: str, messages: list[Envelope | RawMessage]) -> None:
        bodies = [m.body for m in messages]  # type: ignore[union-attr]
        calls.append(bodies)
        if any(b"poison" in b for b in bodies):
            raise RuntimeError("cannot handle poison")

    async def body() -> dict[str, Any]:
        transport = make_transport(max_redeliveries=2)
        await transport.connect()
        await transport.publish_batch(topic, [envelope({"n": 1}, key="m1"), envelope({"poison": True}, key="m1"),
                                              envelope({"n": 2}, key="m1")])
        await transport.subscribe_batch(topic, on_batch, owner="worker")
        await wait_until(lambda: transport.health().stats.get("handled", 0)
                         + transport.health().stats.get("dead_lettered", 0) == 3)
        stats = dict(transport.health().stats)
        await transport.close()
        return stats

    stats = asyncio.run(body())
    poisoned = [c for c in calls if any(b"poison" in b for b in c)]
    assert len(poisoned) == 3 and poisoned[0] == poisoned[1] == poisoned[2]  # 1 + 2 redeliveries, the whole run
    assert stats["dead_lettered"] == len(poisoned[0]) and stats["undeliverable"] == len(poisoned[0])
    records = read_topic(kafka_bootstrap, to_kafka(topic) + ".dlq", len(poisoned[0]))
    assert sorted(r.value() for r in records) == sorted(poisoned[0])  # each record of the failed run, as it was
    assert all("cannot handle poison" in dict(r.headers())[DLQ_ERROR].decode() for r in records)


def test_a_cancelled_subscription_delivers_nothing_more_of_its_batch_through_the_direct_path() -> None:
    """The per-record path without a coroutine (a sync handler's ``direct``) reads the stop flag
    before the first record and after each await: a subscription cancelled before its batch runs
    delivers none of it, one cancelled while a handler's awaitable runs delivers nothing after it,
    and only what was handled has its offset stored. No broker: the records are built in process."""
    from confluent_kafka import Message
    from forge_core import MessageBus, RealClock
    from forge_core.plugin import SchemaRegistry
    from forge_core.transport.codec import encode_structured

    from forge_kafka import KafkaTransport
    from forge_kafka.transport.subscriber import KafkaSubscription

    async def body() -> tuple[list[int], list[int], dict[tuple[str, int], int]]:
        schemas = SchemaRegistry()
        schemas.add("t.n", {"type": "object", "properties": {"n": {"type": "integer"}}})
        transport = KafkaTransport("in", {"bootstrap": "127.0.0.1:1"})
        transport.connection.loop = asyncio.get_running_loop()
        bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"in": transport})
        seen: list[int] = []
        stored: list[dict[tuple[str, int], int]] = []
        subs: list[KafkaSubscription] = []

        def handler(env: Envelope) -> Any:
            seen.append(env.payload["n"])
            if env.payload["n"] == 1:
                async def cancelled_meanwhile() -> None:  # cancel() runs while this is awaited
                    subs[0]._stop.set()
                return cancelled_meanwhile()
            return None

        callback = bus._make_callback(handler, "c", transport, None)
        assert hasattr(callback, "direct")
        sub = KafkaSubscription(transport, "t", callback, group="g", owner="c", group_id="g", ephemeral=False,
                                instance_id=None)
        subs.append(sub)
        sub._store = stored.append  # type: ignore[method-assign]
        events = [bus.build("t.n", {"n": n}, source="s") for n in range(4)]
        records = [Message(topic="t", partition=0, offset=10 + n, value=encode_structured(e), headers=None)
                   for n, e in enumerate(events)]
        try:
            await sub._handle_batch(records)
            first = list(seen)
            seen.clear()
            await sub._handle_batch(records)  # already stopped: nothing
            return first, list(seen), stored[0]
        finally:
            sub.consumer.close()

    first, after, stored = asyncio.run(body())
    assert first == [0, 1] and after == []
    assert stored == {("t", 0): 11}  # the offset of the last record handled, not of the others


def test_records_are_handed_over_as_whole_raw_messages_and_runs_store_the_last_offset_per_partition() -> None:
    """The loops build each RawMessage (a Struct the collector does not track): every field is set
    on what a callback gets, per record and per run; a run with no record skipped goes to the
    batch callback as it is, and the offset of its last record per partition is stored. No broker."""
    from confluent_kafka import Message

    from forge_kafka import KafkaTransport
    from forge_kafka.transport.subscriber import KafkaSubscription

    assert set(RawMessage.__slots__) == {"body", "headers", "verdict"}
    assert not gc.is_tracked(RawMessage(b"{}", {}))  # a batch of them adds nothing to the collector's passes

    counts: dict[str, int] = {}

    async def body() -> tuple[list[RawMessage], list[list[RawMessage]], list[dict[tuple[str, int], int]]]:
        transport = KafkaTransport("in", {"bootstrap": "127.0.0.1:1"})
        transport.connection.loop = asyncio.get_running_loop()
        one: list[RawMessage] = []
        runs: list[list[RawMessage]] = []
        stored: list[dict[tuple[str, int], int]] = []

        async def per_record(topic: str, message: Any) -> None:
            one.append(message)

        async def per_run(topic: str, messages: list[Any]) -> None:
            assert topic == "a/b"
            runs.append(list(messages))

        records = [Message(topic="a.b", partition=n % 2, offset=100 + n, value=b'{"n":%d}' % n,
                           headers=[("x", b"1")] if n == 3 else None) for n in range(5)]
        subs = [KafkaSubscription(transport, "a/b", per_record, group="g", owner="c", group_id="g", ephemeral=False,
                                  instance_id=None),
                KafkaSubscription(transport, "a/b", per_record, group="g", owner="c", group_id="g", ephemeral=False,
                                  instance_id=None, batch_callback=per_run)]
        try:
            for sub in subs:
                sub._store = stored.append  # type: ignore[method-assign]
                await sub._handle_batch(records)
        finally:
            for sub in subs:
                sub.consumer.close()
        counts.update(transport.connection.stats)
        return one, runs, stored

    one, runs, stored = asyncio.run(body())
    assert len(runs) == 1
    for got in (one, runs[0]):
        assert [m.body for m in got] == [b'{"n":%d}' % n for n in range(5)]
        assert [m.headers for m in got] == [{}, {}, {}, {"x": "1"}, {}]
        assert all(m.verdict is None for m in got)
    assert stored == [{("a.b", 0): 104, ("a.b", 1): 103}] * 2
    assert counts["consumed"] == counts["handled"] == 10  # five records, each path
