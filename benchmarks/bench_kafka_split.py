"""Kafka produce → consume throughput with producer and consumer in separate OS processes.

``bench_kafka.py`` runs producer and consumer in one process, so Forge's publish and handle paths
share one interpreter lock, one core at most. A plant never does that: the distributed profile runs
every component in its own process. This measures that shape, raw and Forge side by side on the
same broker (Tansu, memory storage, started here), rounds interleaved:

(a) raw: a child process produces with confluent-kafka (idempotent, acks=all, linger 5 ms,
    ``orjson.dumps`` per message); this process consumes (``consume`` batches of 500,
    ``orjson.loads`` per value);
(b) Forge: a child process publishes through ``MessageBus`` + ``KafkaTransport`` (validation,
    envelope, structured CloudEvents); this process handles through a second bus + transport
    (decode, validation, handler, offsets stored after it returned);
(b') Forge batch: the same with ``publish_batch`` (``--batch`` a call) and a ``batch=True`` handler.

The consumer has joined its group (a warm-up record) and the producer process is connected before
the clock starts; the clock stops at the last message handled. Same payload and 16 keys as
``bench_kafka.py``. On a 2-core machine the broker, the producer and the consumer share two cores.

    python benchmarks/bench_kafka_split.py [--messages 50000] [--rounds 3] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import threading
import time
import uuid
from typing import Any

import orjson

# the same schema, group timings and payload as the one-process benchmark beside this file
from bench_kafka import GROUP, HEARTBEAT, SETTINGS, Tally, payload, publish_all
from confluent_kafka import Consumer, Producer
from forge_kafka import KafkaTransport
from forge_kafka.testing import KafkaServer

from forge_core import MessageBus, RealClock
from forge_core.plugin import SchemaRegistry


# -- producer processes ---------------------------------------------------------------------------
def raw_producer(bootstrap: str, topic: str, messages: int, ready: Any, go: Any) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5})
    producer.list_topics(topic, timeout=10)
    ready.set()
    go.wait(60)
    for n in range(messages):
        value = orjson.dumps(payload(n))
        while True:
            try:
                producer.produce(topic, value, f"m{n % 16}")
                break
            except BufferError:
                producer.poll(0.005)
        producer.poll(0)
    producer.flush(60)


def forge_producer(bootstrap: str, topic: str, messages: int, ready: Any, go: Any, batch: int = 0) -> None:
    async def run() -> None:
        schemas = SchemaRegistry()
        schemas.add("bench.heartbeat", HEARTBEAT)
        out = KafkaTransport("out", {"bootstrap": bootstrap, **SETTINGS})
        bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"out": out})
        await out.connect()
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, go.wait, 60)
        await publish_all(bus, topic, messages, batch)
        await out.flush(60)
        await out.close()

    asyncio.run(run())


def start_producer(target: Any, bootstrap: str, topic: str, messages: int, *extra: Any) -> tuple[Any, Any]:
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=target, args=(bootstrap, topic, messages, ready, go, *extra), daemon=True)
    proc.start()
    if not ready.wait(60):
        proc.kill()
        raise SystemExit(f"producer process for {topic} did not connect within 60 s")
    return proc, go


# -- consumers in this process ---------------------------------------------------------------------
def raw_round(bootstrap: str, messages: int) -> float:
    topic = f"split.raw.{uuid.uuid4().hex[:8]}"
    warmup = Producer({"bootstrap.servers": bootstrap})
    warmup.produce(topic, b'{"warmup":true}', b"m0")
    warmup.flush(10)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest",
                         **GROUP})
    consumer.subscribe([topic])
    count, warm, done = 0, threading.Event(), threading.Event()

    def consume() -> None:
        nonlocal count
        while count < messages:
            for message in consumer.consume(500, 0.1):
                if message.error():
                    continue
                if "warmup" in orjson.loads(message.value()):
                    warm.set()
                else:
                    count += 1
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    if not warm.wait(60):
        raise SystemExit("raw consumer never joined its group")
    proc, go = start_producer(raw_producer, bootstrap, topic, messages)
    start = time.perf_counter()
    go.set()
    if not done.wait(180):
        raise SystemExit(f"raw: {count} of {messages} consumed")
    elapsed = time.perf_counter() - start
    proc.join(30)
    consumer.close()
    return messages / elapsed


async def forge_round(bootstrap: str, messages: int, batch: int = 0) -> float:
    topic = f"split{uuid.uuid4().hex[:8]}/heartbeats"
    schemas = SchemaRegistry()
    schemas.add("bench.heartbeat", HEARTBEAT)
    into = KafkaTransport("in", {"bootstrap": bootstrap, **SETTINGS})
    warm_out = KafkaTransport("warm", {"bootstrap": bootstrap, **SETTINGS})
    bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"in": into, "warm": warm_out})
    await into.connect()
    await warm_out.connect()
    tally = Tally(messages)
    await tally.subscribe(bus, topic, batch)
    await bus.publish(topic, "bench.heartbeat", payload(0), source="warmup", transport="warm")
    await asyncio.wait_for(tally.warm.wait(), 60)
    await warm_out.close()
    loop = asyncio.get_running_loop()
    proc, go = await loop.run_in_executor(None, start_producer, forge_producer, bootstrap, topic, messages, batch)
    start = time.perf_counter()
    go.set()
    await asyncio.wait_for(tally.done.wait(), 180)
    elapsed = time.perf_counter() - start
    await loop.run_in_executor(None, proc.join, 30)
    await into.close()
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500, help="messages per publish_batch call")
    args = parser.parse_args()
    load_before = os.getloadavg()
    raw: list[float] = []
    forge: list[float] = []
    forge_batch: list[float] = []
    with KafkaServer() as server:
        for _ in range(args.rounds):  # interleaved, so all sides see the same machine state
            raw.append(raw_round(server.bootstrap, args.messages))
            forge.append(asyncio.run(forge_round(server.bootstrap, args.messages)))
            forge_batch.append(asyncio.run(forge_round(server.bootstrap, args.messages, args.batch)))
            print(f"round {len(raw)}: raw {raw[-1]:,.0f} msg/s, forge {forge[-1]:,.0f} msg/s "
                  f"({forge[-1] / raw[-1]:.2f}), forge batch {forge_batch[-1]:,.0f} msg/s "
                  f"({forge_batch[-1] / raw[-1]:.2f})", flush=True)
    load_after = os.getloadavg()
    r, f, fb = statistics.median(raw), statistics.median(forge), statistics.median(forge_batch)
    print(f"\nproducer and consumer in separate processes; Tansu (memory storage); {args.messages:,} messages "
          f"x {args.rounds} rounds; load {load_before[0]:.2f} -> {load_after[0]:.2f}, {os.cpu_count()} cores")
    print(f"  raw confluent-kafka                      {r:10,.0f} msg/s (median)")
    print(f"  Forge publish / handler per message      {f:10,.0f} msg/s (median; validated on both sides)")
    print(f"  Forge publish_batch / batch handler      {fb:10,.0f} msg/s (median; {args.batch} a call)")
    for label, value in (("per message", f), ("batch", fb)):
        verdict = "met" if value / r >= 0.7 else "NOT met"
        print(f"  ratio Forge {label:11s} / raw          {value / r:10.2f}  (target >= 0.7: {verdict})")


if __name__ == "__main__":
    main()
