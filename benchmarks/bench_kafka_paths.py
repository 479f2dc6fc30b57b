"""Forge's Kafka client paths alone, no broker: CPU (or instructions) a record of each.

Records are built in process and go through a real ``MessageBus`` over ``KafkaTransport``s, so the
figure is the Python side of each path without librdkafka's network threads or a broker's noise:

- ``consume``: fetched records (``confluent_kafka.Message``, Forge's structured events without
  headers as ``bus.publish`` writes them: each its own time and source; 3 partitions) through
  ``KafkaSubscription._handle_batch`` → the bus's admission
  (decode, schema check) → a sync handler per message; offsets stored per batch (a stand-in consumer);
- ``consume_batch``: records as ``publish_batch`` writes them (one time a call, keyed by machine)
  through ``_handle_runs`` → a ``batch=True`` handler;
- ``produce``: ``MessageBus.publish`` per message → ``KafkaPublisher.direct_publish`` →
  librdkafka's ``produce()`` into its local queue (a producer with no broker to reach);
- ``produce_batch``: ``MessageBus.publish_batch`` of ``--batch`` payloads a call.

Prints CPU µs a record (``time.process_time`` of the measured loop). Under load, count instructions
instead: run the same path at two sizes under cachegrind and divide the difference (set-up and
imports cancel out), e.g. against a worktree of an older commit (``PYTHONPATH`` to its ``src/`` and
``plugins/forge_kafka/src``):

    python benchmarks/bench_kafka_paths.py consume [--records 100000] [--batch 500]
    valgrind --tool=cachegrind --cache-sim=no python benchmarks/bench_kafka_paths.py produce --records 2000
    (and --records 12000: instructions a record = (I(12000) - I(2000)) / 10000)
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench_kafka_common import HEARTBEAT, payload  # benchmarks/ is on sys.path when run as a script
from confluent_kafka import Message, Producer
from forge_kafka import KafkaTransport
from forge_kafka.transport.subscriber import KafkaSubscription

from forge_core import Envelope, MessageBus, RealClock
from forge_core.plugin import SchemaRegistry
from forge_core.transport import encode_structured, encode_structured_many

TOPIC = "bench/heartbeats"


class StandInConsumer:
    """Where a subscription stores offsets and closes: nothing to reach."""

    def store_offsets(self, offsets: Any = None) -> None:
        pass

    def close(self) -> None:
        pass


def bus_over(transport: KafkaTransport) -> MessageBus:
    schemas = SchemaRegistry()
    schemas.add("bench.heartbeat", HEARTBEAT)
    return MessageBus(schemas=schemas, clock=RealClock(), transports={transport.name: transport})


async def consume(records: int, batch: int, *, batch_handler: bool) -> float:
    into = KafkaTransport("in", {"bootstrap": "127.0.0.1:1", "log_every": 3600})
    bus = bus_over(into)
    count = 0

    def one(envelope: Envelope) -> None:
        nonlocal count
        count += 1

    def many(envelopes: list[Envelope]) -> None:
        nonlocal count
        count += len(envelopes)

    # the records as each publish path writes them (a fixed start: the same counts run after run):
    # per message, its own time and source; publish_batch's, one time a call, keyed by machine
    now = 1_764_901_540.25
    if batch_handler:
        bodies = encode_structured_many([Envelope("bench.heartbeat", payload(n), "gateway", f"id-{n}", now,
                                                  f"m{n % 16}", 1, {}) for n in range(batch)])
    else:
        bodies = [encode_structured(Envelope("bench.heartbeat", payload(n), f"m{n % 16}", f"id-{n}", now + n * 1e-6,
                                             None, 1, {})) for n in range(batch)]
    if batch_handler:
        on_batch = bus._make_batch_callback(many, "bench", into, None)

        async def per_record(topic: str, message: Any) -> None:
            await on_batch(topic, [message])

        sub = KafkaSubscription(into, TOPIC, per_record, group=None, owner="bench", group_id="bench",
                                ephemeral=False, instance_id=None, batch_callback=on_batch)
    else:
        sub = KafkaSubscription(into, TOPIC, bus._make_callback(one, "bench", into, None), group=None,
                                owner="bench", group_id="bench", ephemeral=False, instance_id=None)
    sub.consumer.close()
    sub.consumer = StandInConsumer()  # type: ignore[assignment]
    batches = [[Message(topic="bench.heartbeats", partition=n % 3, offset=first + n, key=b"m", value=bodies[n],
                        headers=None) for n in range(batch)] for first in range(0, records, batch)]
    start = time.process_time()
    for messages in batches:
        await sub._handle_batch(messages)
    used = time.process_time() - start
    assert count == len(batches) * batch, count
    return used / count * 1e6


async def produce(records: int, batch: int, *, batched: bool) -> float:
    out = KafkaTransport("out", {"bootstrap": "127.0.0.1:1", "log_every": 3600})
    bus = bus_over(out)
    connection = out.connection
    connection.loop = asyncio.get_running_loop()
    # the transport's producer settings, without a broker: records stay in librdkafka's queue
    connection.producer = Producer({"bootstrap.servers": "127.0.0.1:1", "enable.idempotence": True, "acks": "all",
                                    "linger.ms": 5, "delivery.report.only.error": True, "log_level": 0,
                                    "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 4_000_000,
                                    "on_delivery": out.publisher.on_structured_report})
    connection.connected = True
    start = time.process_time()
    if batched:
        for first in range(0, records, batch):
            numbers = range(first, min(first + batch, records))
            await bus.publish_batch(TOPIC, "bench.heartbeat", [payload(n) for n in numbers], source="gateway",
                                    keys=[f"m{n % 16}" for n in numbers], transport="out")
    else:
        for n in range(records):
            await bus.publish(TOPIC, "bench.heartbeat", payload(n), source=f"m{n % 16}", transport="out")
    used = time.process_time() - start
    connection.producer.purge()
    connection.producer = None
    return used / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", choices=("consume", "consume_batch", "produce", "produce_batch"))
    parser.add_argument("--records", type=int, default=100_000, help="a multiple of --batch")
    parser.add_argument("--batch", type=int, default=500, help="records a fetched batch / a publish_batch call")
    args = parser.parse_args()
    runs = {
        "consume": lambda: consume(args.records, args.batch, batch_handler=False),
        "consume_batch": lambda: consume(args.records, args.batch, batch_handler=True),
        "produce": lambda: produce(args.records, args.batch, batched=False),
        "produce_batch": lambda: produce(args.records, args.batch, batched=True),
    }
    print(f"{args.path}: {asyncio.run(runs[args.path]()):.3f} µs CPU a record ({args.records:,} records)")


if __name__ == "__main__":
    main()
