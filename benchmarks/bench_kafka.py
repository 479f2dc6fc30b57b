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

Prints each side's median, client CPU per message (every thread), the garbage collector's work per
round (collections per generation, unreachable objects found, its CPU), Forge's ratios to raw and to
the peer, and the load average before and after.

The raw sides are in ``bench_kafka_raw.py``, the peer in ``bench_kafka_peer.py``, what every side shares
in ``bench_kafka_common.py``; the Forge sides and the run are here.

    python benchmarks/bench_kafka.py [--messages 50000] [--rounds 3] [--batch 500] [--rate 1000]
                                     [--seconds 10] [--fetch-wait-ms 10] [--broker apache|tansu] [--headers]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench_kafka_common import (  # benchmarks/ is on sys.path when run as a script
    GROUP,
    HEARTBEAT,
    SETTINGS,
    GcTally,
    broker,
    cpu,
    paced,
    payload,
    percentiles,
    timed,
)
from bench_kafka_peer import faststream_latency, faststream_round
from bench_kafka_raw import raw_latency, raw_round
from forge_kafka import KafkaTransport
from forge_kafka.settings import KafkaSettings

from forge_core import Envelope, MessageBus, RealClock, compiled
from forge_core.plugin import SchemaRegistry

#: What bench_kafka_split, bench_kafka_header, bench_kafka_fetch_wait and bench_pasta_e2e import from here.
__all__ = ["GROUP", "HEARTBEAT", "SETTINGS", "Tally", "broker", "forge_latency", "forge_round", "payload",
           "percentiles", "publish_all", "raw_latency"]


# -- Forge --------------------------------------------------------------------------------------------
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
        if not self.warm.is_set():  # the warm-up message comes alone, before the clock starts
            for envelope in envelopes:
                self.one(envelope)
            return
        # a count per batch, as the raw consumer's ``count += 1`` inline (a call per record was the
        # benchmark's own cost in Forge's figure, not Forge's)
        self.count += len(envelopes)
        if self.count >= self.messages:
            self.done.set()

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
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the broker is up (what a runtime "
                        "could do after start: the collector then skips every object made before)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--sides", default="", help="comma-separated throughput sides to run (default: all), "
                        "e.g. raw,raw_design,forge,forge_batch for an A/B of Forge's code against a worktree")
    args = parser.parse_args()
    load_before = os.getloadavg()
    n = args.messages
    with broker(args.broker) as (bootstrap, described):
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
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
        tallies: dict[str, GcTally] = {side: GcTally() for side in sides}
        for _ in range([args.rounds, 0][args.skip_throughput]):  # interleaved: all sides see the same machine
            for side, (_label, run) in sides.items():
                with tallies[side].on():
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
    print(f"\nbroker: {described} at {bootstrap}; {n:,} messages x {args.rounds} rounds; {os.cpu_count()} cores; "
          f"forge {compiled.describe()}")
    print(f"load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
          f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} (shared machine: other work runs too)")
    if not args.skip_throughput:
        median = {side: statistics.median(values) for side, values in rates.items()}
        for side, (label, _run) in sides.items():
            print(f"{label:48s}: {median[side]:9,.0f} msg/s (median; {[round(x) for x in rates[side]]}); "
                  f"client CPU {statistics.median(used[side]):.1f} us/msg")
        rounds = max(args.rounds, 1)
        for side, tally in tallies.items():  # the collector's work per round, a side's whole run
            per_round = "/".join(f"{count / rounds:g}" for count in tally.collections)
            print(f"gc {side}: collections per round (gen 0/1/2) {per_round}, unreachable objects "
                  f"{tally.unreachable / rounds:g}, {tally.seconds / rounds * 1e3:.0f} ms CPU per round "
                  f"({tally.seconds / rounds / n * 1e6:.2f} us a message)")
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
