"""The raw sides of ``bench_kafka.py``: confluent-kafka driven as an expert would, with orjson (and,
with ``wire``, the design's floor of work per message, or CloudEvents headers), for throughput and
for latency at a fixed rate (see ``bench_kafka.py``'s docstring, (a) to (a''))."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import jsonschema_rs
import orjson
from bench_kafka_common import (  # benchmarks/ is on sys.path when run as a script
    GROUP,
    HEARTBEAT,
    POLL_EVERY,
    cpu,
    paced,
    payload,
    timed,
)
from confluent_kafka import Consumer, Producer

from forge_core import Envelope

#: The design's floor (see the module docstring): the attributes of a headerless structured event.
DESIGN_PREFIX = (b'{"specversion":"1.0","source":"gateway","type":"bench.heartbeat",'
                 b'"time":"2026-01-01T00:00:00.000000Z","datacontenttype":"application/json","schemaversion":"1","id":')



def raw_round(bootstrap: str, messages: int, *, wire: str = "none") -> tuple[float, float]:
    """``wire``: ``none`` (plain JSON), ``design`` (headerless structured + the design's floor of work),
    ``structured`` (+ one content-type header) or ``binary`` (+ six ce_* headers)."""
    topic = f"raw.{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5})
    producer.produce(topic, b'{"warmup":true}', b"m0")
    producer.flush(10)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest",
                         **GROUP})
    consumer.subscribe([topic])
    validator = jsonschema_rs.validator_for(HEARTBEAT, validate_formats=True)
    is_valid, validate = validator.is_valid, validator.validate

    def check(data: Any) -> None:  # at its cheapest: validate only to raise for a payload that fails (as Forge)
        if not is_valid(data):
            validate(data)

    count = 0
    done = threading.Event()
    warm = threading.Event()

    def consume() -> None:
        nonlocal count
        while count < messages:
            for message in consumer.consume(500, 0.1):
                if message.error():
                    continue
                if wire in ("structured", "binary"):
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
    produce, poll = producer.produce, producer.poll
    for n in range(messages):
        key = f"m{n % 16}"
        if wire == "design":
            data = payload(n)
            check(data)
            envelope = Envelope("bench.heartbeat", data, "gateway", f"{prefix}-{n}", 0.0, key, 1, {})
            value = b"".join((DESIGN_PREFIX, orjson.dumps(envelope.id), b',"partitionkey":',
                              orjson.dumps(envelope.key), b',"data":', orjson.dumps(data), b"}"))
        else:
            value = orjson.dumps(payload(n))
        while True:
            try:
                if wire == "structured":
                    produce(topic, value, key, headers=[("content-type", "application/cloudevents+json")])
                elif wire == "binary":
                    produce(topic, value, key, headers={
                        "ce_specversion": "1.0", "ce_id": f"{prefix}-{n}", "ce_source": key,
                        "ce_type": "bench.heartbeat", "ce_time": "2026-01-01T00:00:00.000000Z",
                        "ce_schemaversion": "1"})
                else:
                    produce(topic, value, key)
                break
            except BufferError:
                poll(0.005)
        if n % POLL_EVERY == 0:
            poll(0)
    producer.flush(30)
    done.wait(120)
    elapsed, used = time.perf_counter() - start, cpu() - cpu_start
    consumer.close()
    return count / elapsed, used / messages * 1e6



def raw_latency(bootstrap: str, rate: int, seconds: float, fetch_wait_ms: int) -> list[float]:
    topic = f"rawlat.{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5})
    producer.produce(topic, b'{"warmup":true}', b"m0")
    producer.flush(10)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest",
                         "fetch.wait.max.ms": fetch_wait_ms, **GROUP})
    consumer.subscribe([topic])
    total = int(rate * seconds)
    latencies: list[float] = []
    warm, stop = threading.Event(), threading.Event()

    def consume() -> None:
        while not stop.is_set() and len(latencies) < total:
            first = consumer.poll(0.1)
            if first is None:
                continue
            for message in [first, *consumer.consume(499, 0)]:
                if message.error():
                    continue
                value = orjson.loads(message.value())
                if "warmup" in value:
                    warm.set()
                else:
                    latencies.append((time.time() - value["sent"]) * 1000)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    warm.wait(60)
    for n, due in paced(rate, total):
        time.sleep(due)
        producer.produce(topic, orjson.dumps(timed(n)), f"m{n % 16}")
        producer.poll(0)
    producer.flush(30)
    thread.join(60)
    stop.set()
    consumer.close()
    return latencies


