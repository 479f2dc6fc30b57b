"""Kafka produce → consume: raw confluent-kafka, the peer (FastStream) and Forge, throughput and p99.

Starts its own broker — Apache Kafka (one KRaft node, the broker the tests use; ``--broker tansu``
for Tansu, memory storage) — and, on it, the same number of messages with the same JSON payload and
16 keys, each side producing every message and consuming every one of them in the same process:

(a) raw: confluent-kafka driven as an expert would: a Producer (idempotent, acks=all, linger 5 ms,
    ``orjson.dumps`` per message, positional ``produce()``, ``poll(0)`` every 1,000) and a Consumer
    thread (``consume`` batches of 500, ``orjson.loads`` per value, librdkafka's default offset store
    and auto-commit); no headers, no validation, no envelope;
(a') raw + the design's floor: the same client doing, per message and without Forge, what
    DESIGN.md asks of every message in its cheapest form: a headerless structured event joined from
    bytes, one jsonschema-rs check and one Envelope on each side;
(a'') with ``--headers``: raw + structured mode's content-type header, raw + binary mode's six
    ``ce_*`` headers (keyword ``produce()``, ``headers()`` read back): what each costs a bare client;
(b) the peer, FastStream 0.7 (``faststream[confluent]``) with a pydantic model of the same message:
    ``broker.publish(model, topic, key=..., no_confirm=True)`` and a subscriber taking the model, per
    message; then ``publish_batch`` (``--batch`` models a call, no_confirm) and a ``batch=True``
    subscriber (``max_records=--batch``); per-message logging off (``logger=None``);
(c) Forge: ``MessageBus.publish`` (schema validation, envelope, a headerless structured CloudEvents
    event: the transport's default) over a KafkaTransport, to a handler subscribed through a second
    KafkaTransport (decode, validate, call, offsets stored after it returned); then
    ``publish_batch`` (``--batch`` payloads a call, keyed by machine) and a ``batch=True`` handler.
Rounds are interleaved so all sides see the same machine state; every consumer has joined its group
before the clock starts (a warm-up message); the clock stops when the last message is handled.

Then p50/p99 latency at ``--rate`` msg/s (1,000) for ``--seconds``: each side publishes one message
at a time on a fixed schedule, the payload carrying ``time.time()`` taken just before the publish
call; the handler records the difference (same process, same clock). Every consumer gets the same
``fetch.wait.max.ms`` (``--fetch-wait-ms``, default the transport's ``fetch_wait_max_ms``) so the
figure is the library's, not the setting's; raw consumes with ``poll()`` + ``consume(n, 0)`` there
(``consume(n, timeout)`` waits the whole timeout for n records).

Prints each side's median, client CPU per message (every thread), Forge's ratios to raw and to the
peer, and the load average before and after.

    python benchmarks/bench_kafka.py [--messages 50000] [--rounds 3] [--batch 500] [--rate 1000]
                                     [--seconds 10] [--fetch-wait-ms 10] [--broker apache|tansu] [--headers]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

import jsonschema_rs
import orjson
from confluent_kafka import Consumer, Producer
from forge_kafka import KafkaTransport
from forge_kafka.settings import KafkaSettings
from forge_kafka.testing import KafkaCluster, KafkaServer
from pydantic import BaseModel, ConfigDict, Field

from forge_core import Envelope, MessageBus, RealClock
from forge_core.plugin import SchemaRegistry

HEARTBEAT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["title", "machineId"],
    "properties": {"title": {"const": "heartbeat"}, "machineId": {"type": "integer", "minimum": 0},
                   "bladeType": {"enum": ["A", "B"]}, "sent": {"type": "number"}},
    "additionalProperties": False,
}
GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500, "max.poll.interval.ms": 10000}
SETTINGS = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "metadata_refresh_ms": 500}
POLL_EVERY = 1000  # raw producer: serve delivery reports every N produce() calls, not every one
WARMUP_ID = 1_000_000  # machineId of the warm-up message (the peer has no envelope source to mark it)


class Heartbeat(BaseModel):
    """The peer's model of the same message (the schema above, as pydantic)."""

    model_config = ConfigDict(extra="forbid")
    title: Literal["heartbeat"]
    machineId: int = Field(ge=0)  # the wire's field names
    bladeType: Literal["A", "B"] | None = None
    sent: float | None = None


def payload(n: int) -> dict[str, Any]:
    """The n-th message: 16 machines in turn."""
    return {"title": "heartbeat", "machineId": n % 16, "bladeType": "A"}


def cpu() -> float:
    """CPU seconds of this process so far, every thread (librdkafka's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


#: The design's floor (see the module docstring): the attributes of a headerless structured event.
DESIGN_PREFIX = (b'{"specversion":"1.0","source":"gateway","type":"bench.heartbeat",'
                 b'"time":"2026-01-01T00:00:00.000000Z","datacontenttype":"application/json","schemaversion":"1","id":')


# -- throughput ---------------------------------------------------------------------------------------
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


def forge_bus(bootstrap: str, **settings: Any) -> tuple[MessageBus, KafkaTransport, KafkaTransport]:
    schemas = SchemaRegistry()
    schemas.add("bench.heartbeat", HEARTBEAT)
    out = KafkaTransport("out", {"bootstrap": bootstrap, **SETTINGS, **settings})
    into = KafkaTransport("in", {"bootstrap": bootstrap, **SETTINGS, **settings})
    return MessageBus(schemas=schemas, clock=RealClock(), transports={"out": out, "in": into}), out, into


async def forge_round(bootstrap: str, messages: int, *, batch: int = 0) -> tuple[float, float]:
    topic = f"fb{uuid.uuid4().hex[:8]}/heartbeats"
    bus, out, into = forge_bus(bootstrap)
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


@contextlib.asynccontextmanager
async def faststream_broker(bootstrap: str, topic: str, handler: Callable[..., Any], *, batch: int = 0,
                            fetch_wait_ms: int = 500) -> Any:
    """A started FastStream KafkaBroker (confluent) with ``handler`` subscribed to ``topic``."""
    from faststream.confluent import KafkaBroker  # the peer: only this benchmark needs it

    broker = KafkaBroker(bootstrap, logger=None, enable_idempotence=True, acks="all", linger_ms=5)
    options: dict[str, Any] = {"batch": True, "max_records": batch} if batch else {}
    broker.subscriber(topic, group_id=topic, auto_offset_reset="earliest", session_timeout_ms=2000,
                      heartbeat_interval_ms=500, max_poll_interval_ms=10000, fetch_max_wait_ms=fetch_wait_ms,
                      **options)(handler)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def faststream_round(bootstrap: str, messages: int, *, batch: int = 0) -> tuple[float, float]:
    topic = f"fs.{uuid.uuid4().hex[:8]}"
    count = 0
    warm, done = asyncio.Event(), asyncio.Event()

    def seen(model: Heartbeat) -> None:
        nonlocal count
        if model.machineId == WARMUP_ID:
            warm.set()
            return
        count += 1
        if count == messages:
            done.set()

    async def one(model: Heartbeat) -> None:
        seen(model)

    async def many(models: list[Heartbeat]) -> None:
        for model in models:
            seen(model)

    async with faststream_broker(bootstrap, topic, many if batch else one, batch=batch) as broker:
        await broker.publish(Heartbeat(title="heartbeat", machineId=WARMUP_ID), topic, key=b"m0")
        await asyncio.wait_for(warm.wait(), 60)
        start, cpu_start = time.perf_counter(), cpu()
        if batch:
            for first in range(0, messages, batch):
                models = [Heartbeat(**payload(n)) for n in range(first, min(first + batch, messages))]
                await broker.publish_batch(*models, topic=topic, no_confirm=True)
        else:
            for n in range(messages):
                await broker.publish(Heartbeat(**payload(n)), topic, key=f"m{n % 16}", no_confirm=True)
        await asyncio.wait_for(done.wait(), 300)
        elapsed, used = time.perf_counter() - start, cpu() - cpu_start
    return count / elapsed, used / messages * 1e6


# -- latency at a fixed rate -------------------------------------------------------------------------
def timed(n: int) -> dict[str, Any]:
    return {**payload(n), "sent": time.time()}


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


def paced(rate: int, total: int) -> Iterator[tuple[int, float]]:
    """(n, seconds to wait before sending it) on a fixed schedule of ``rate`` a second."""
    start = time.perf_counter()
    for n in range(total):
        yield n, max(0.0, start + n / rate - time.perf_counter())


async def forge_latency(bootstrap: str, rate: int, seconds: float, fetch_wait_ms: int) -> list[float]:
    topic = f"flat{uuid.uuid4().hex[:8]}/heartbeats"
    bus, out, into = forge_bus(bootstrap, fetch_wait_max_ms=fetch_wait_ms)
    await out.connect()
    await into.connect()
    latencies: list[float] = []
    warm = asyncio.Event()

    def handle(envelope: Envelope) -> None:
        if envelope.source == "warmup":
            warm.set()
        else:
            latencies.append((time.time() - envelope.payload["sent"]) * 1000)

    await bus.subscribe(topic, handle, owner="bench", transport="in")
    await bus.publish(topic, "bench.heartbeat", payload(0), source="warmup", transport="out")
    await asyncio.wait_for(warm.wait(), 60)
    total = int(rate * seconds)
    for n, due in paced(rate, total):
        await asyncio.sleep(due)
        await bus.publish(topic, "bench.heartbeat", timed(n), source=f"m{n % 16}", transport="out")
    deadline = time.monotonic() + 30
    while len(latencies) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await into.close()
    await out.close()
    return latencies


async def faststream_latency(bootstrap: str, rate: int, seconds: float, fetch_wait_ms: int) -> list[float]:
    topic = f"fslat.{uuid.uuid4().hex[:8]}"
    latencies: list[float] = []
    warm = asyncio.Event()

    async def handle(model: Heartbeat) -> None:
        if model.machineId == WARMUP_ID:
            warm.set()
        elif model.sent is not None:
            latencies.append((time.time() - model.sent) * 1000)

    async with faststream_broker(bootstrap, topic, handle, fetch_wait_ms=fetch_wait_ms) as broker:
        await broker.publish(Heartbeat(title="heartbeat", machineId=WARMUP_ID), topic, key=b"m0")
        await asyncio.wait_for(warm.wait(), 60)
        total = int(rate * seconds)
        for n, due in paced(rate, total):
            await asyncio.sleep(due)
            await broker.publish(Heartbeat(**timed(n)), topic, key=f"m{n % 16}", no_confirm=True)
        deadline = time.monotonic() + 30
        while len(latencies) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    return latencies


def percentiles(latencies: list[float]) -> tuple[float, float, int]:
    """(p50, p99, samples) in ms; the first 1 % (the consumer's first fetches) left out."""
    kept = latencies[len(latencies) // 100:]
    if len(kept) < 100:
        return float("nan"), float("nan"), len(kept)
    cuts = statistics.quantiles(kept, n=100)
    return cuts[49], cuts[98], len(kept)


# -- the run -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def broker(kind: str) -> Iterator[tuple[str, str]]:
    """(bootstrap, description) of a broker started for this run."""
    if kind == "tansu":
        with KafkaServer() as server:
            yield server.bootstrap, "Tansu (memory storage)"
    else:
        with KafkaCluster(1) as cluster:
            yield cluster.bootstrap, "Apache Kafka (1 KRaft node, the tests' broker)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500, help="messages per publish_batch call")
    parser.add_argument("--rate", type=int, default=1000, help="msg/s of the latency runs")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each latency run")
    parser.add_argument("--fetch-wait-ms", type=int, default=KafkaSettings.model_fields["fetch_wait_max_ms"].default,
                        help="every consumer's fetch.wait.max.ms in the latency runs")
    parser.add_argument("--broker", choices=("apache", "tansu"), default="apache")
    parser.add_argument("--headers", action="store_true", help="also raw with each CloudEvents header set")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--sides", default="", help="comma-separated throughput sides to run (default: all), "
                        "e.g. raw,raw_design,forge,forge_batch for an A/B of Forge's code against a worktree")
    args = parser.parse_args()
    load_before = os.getloadavg()
    n = args.messages
    with broker(args.broker) as (bootstrap, described):
        sides: dict[str, tuple[str, Callable[[], tuple[float, float]]]] = {
            "raw": ("raw confluent-kafka + orjson", lambda: raw_round(bootstrap, n)),
            "raw_design": ("raw + the design's floor of work per message",
                           lambda: raw_round(bootstrap, n, wire="design")),
        }
        if args.headers:
            sides["raw_structured"] = ("raw + a content-type header",
                                       lambda: raw_round(bootstrap, n, wire="structured"))
            sides["raw_binary"] = ("raw + binary mode's six ce_* headers",
                                   lambda: raw_round(bootstrap, n, wire="binary"))
        sides.update({
            "peer": ("FastStream publish / subscriber per message",
                     lambda: asyncio.run(faststream_round(bootstrap, n))),
            "peer_batch": (f"FastStream publish_batch / batch subscriber ({args.batch})",
                           lambda: asyncio.run(faststream_round(bootstrap, n, batch=args.batch))),
            "forge": ("Forge publish / handler per message", lambda: asyncio.run(forge_round(bootstrap, n))),
            "forge_batch": (f"Forge publish_batch / batch handler ({args.batch})",
                            lambda: asyncio.run(forge_round(bootstrap, n, batch=args.batch))),
        })
        if args.sides:
            sides = {side: sides[side] for side in args.sides.split(",")}
        rates: dict[str, list[float]] = {side: [] for side in sides}
        used: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range([args.rounds, 0][args.skip_throughput]):  # interleaved: all sides see the same machine
            for side, (_label, run) in sides.items():
                rate, us = run()
                rates[side].append(rate)
                used[side].append(us)
                print(f"  {side}: {rate:,.0f} msg/s", flush=True)
        lat_args = (bootstrap, args.rate, args.seconds, args.fetch_wait_ms)
        latency = {} if args.skip_latency else {
            "raw": percentiles(raw_latency(*lat_args)),
            "peer": percentiles(asyncio.run(faststream_latency(*lat_args))),
            "forge": percentiles(asyncio.run(forge_latency(*lat_args))),
        }
    load_after = os.getloadavg()
    print(f"\nbroker: {described} at {bootstrap}; {n:,} messages x {args.rounds} rounds; {os.cpu_count()} cores")
    print(f"load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
          f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} (shared machine: other work runs too)")
    if not args.skip_throughput:
        median = {side: statistics.median(values) for side, values in rates.items()}
        for side, (label, _run) in sides.items():
            print(f"{label:48s}: {median[side]:9,.0f} msg/s (median; {[round(x) for x in rates[side]]}); "
                  f"client CPU {statistics.median(used[side]):.1f} us/msg")
        for forge, raw, target in (("forge_batch", "raw", 0.8), ("forge", "raw", 0.6), ("forge_batch", "raw_design", 0),
                                   ("forge", "raw_design", 0), ("forge_batch", "peer_batch", 1),
                                   ("forge", "peer", 1), ("peer_batch", "raw", 0), ("peer", "raw", 0)):
            if forge not in rates or raw not in rates:
                continue
            per_round = [f / r for f, r in zip(rates[forge], rates[raw], strict=True)]
            ratio = median[forge] / median[raw]
            verdict = f" (target >= {target}: {'met' if ratio >= target else 'NOT met'})" if target else ""
            print(f"ratio {forge} / {raw}: {ratio:.2f}{verdict}; per round {[round(x, 2) for x in per_round]}")
        # CPU per message is steadier than msg/s on a shared machine: the same ratios, of client CPU
        for forge in ("forge", "forge_batch"):
            for raw in ("raw", "raw_design"):
                if forge in used and raw in used:
                    print(f"client CPU ratio {raw} / {forge} (higher is better): "
                          f"{statistics.median(used[raw]) / statistics.median(used[forge]):.2f}")
    if args.skip_latency:
        return
    print(f"\nlatency at {args.rate:,} msg/s for {args.seconds:g} s, fetch.wait.max.ms {args.fetch_wait_ms} on "
          f"every consumer (publish call -> handler, same process):")
    for side, label in (("raw", "raw confluent-kafka + orjson"), ("peer", "FastStream (pydantic)"),
                        ("forge", "Forge (validated, enveloped)")):
        p50, p99, count = latency[side]
        print(f"  {label:32s} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  ({count} samples)")
    print(f"  p99 Forge / raw {latency['forge'][1] / latency['raw'][1]:.2f}, "
          f"Forge / FastStream {latency['forge'][1] / latency['peer'][1]:.2f} (lower is better)")


if __name__ == "__main__":
    main()
