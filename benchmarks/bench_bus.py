"""In-memory publish → validate → handle throughput, beside its plain-Python equivalent (issue 17 item 1).

(a) plain-Python equivalent, the tightest asyncio code doing per message what the bus must: an
    ``async`` publish that runs the same compiled jsonschema-rs check (the registry's own), builds
    a small envelope (type, payload, source, id from a prefix + counter, clock time, topic; made
    with ``object.__new__`` and six attribute stores, as Forge makes its Envelope, not by calling
    the class) and queues it for the subscription; a delivery task per subscription, woken by a
    future, hands each message to the handler. No routing table, no stats, no dead letters, no
    redelivery.
(b) Forge: ``MessageBus.publish`` over the in-memory transport to a subscribed handler.
(c) for reference, a dict of topic → callbacks dispatching already-decoded payloads (no asyncio,
    no validation, no envelope).

Both sides publish in bursts of 1,000, each handled before the next (a running plant's short
queues). After one unmeasured warm-up round of each side, rounds alternate (a), (b), (c), all in
this process pinned to one core; figures are the range over rounds, the ratio is per round. Each
rate is given per wall second and per CPU second of this thread (``time.thread_time``): on a
loaded machine the wall figure also counts the time other processes held the core, the CPU figure
does not. Targets: (b) ≥ 300,000 validated msg/s and (b)/(a) ≥ 0.7.

    python benchmarks/bench_bus.py [--messages 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_core import MessageBus, RealClock, compiled
from forge_core.plugin import SchemaRegistry
from forge_core.transport import MemoryTransport

HEARTBEAT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["title", "machineId"],
    "properties": {
        "title": {"const": "heartbeat"},
        "machineId": {"type": "integer", "minimum": 0},
        "bladeType": {"enum": ["A", "B"]},
    },
    "additionalProperties": False,
}
TYPE = "pasta.heartbeat"
BURST = 1000
TARGET_RATE, TARGET_RATIO = 300_000, 0.7


@dataclass
class Rate:
    wall: float  # messages per wall second
    cpu: float  # messages per CPU second of this thread


class Timer:
    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.thread_time()
        return self

    def rate(self, messages: int) -> Rate:
        return Rate(messages / (time.perf_counter() - self.wall), messages / (time.thread_time() - self.cpu))

    def __exit__(self, *exc: object) -> None:
        pass


def payloads(n: int) -> list[dict[str, Any]]:
    return [{"title": "heartbeat", "machineId": i % 50, "bladeType": "AB"[i % 2]} for i in range(n)]


def registry() -> SchemaRegistry:
    schemas = SchemaRegistry()
    schemas.add(TYPE, HEARTBEAT)
    return schemas


class SmallEnvelope:
    __slots__ = ("id", "payload", "source", "time", "topic", "type")

    def __init__(self, type_: str, payload: Any, source: str, id_: str, time_: float, topic: str) -> None:
        self.type, self.payload, self.source, self.id, self.time, self.topic = type_, payload, source, id_, time_, topic


def plain_equivalent(items: list[dict[str, Any]]) -> Rate:
    check: Callable[[Any], Any] = registry().fast_entry(TYPE)[0]  # type: ignore[index]  # the same compiled check

    async def main() -> Rate:
        loop = asyncio.get_running_loop()
        queue: deque[SmallEnvelope] = deque()
        received = [0]
        waiter: list[asyncio.Future[None] | None] = [None]
        count = [0]
        prefix = "0123456789ab-"
        clock = time.time
        new = object.__new__

        def handler(envelope: SmallEnvelope) -> None:
            received[0] += 1

        async def deliver() -> None:
            while True:
                while queue:
                    handler(queue.popleft())
                fut = waiter[0] = loop.create_future()
                await fut

        async def publish(topic: str, type_: str, payload: Any, source: str) -> SmallEnvelope:
            check(payload)
            count[0] += 1
            # made as Forge's publish makes its Envelope: without calling the class (a Python __init__
            # costs type_call and a frame, ~1,300 instructions a message here), each field set
            envelope = new(SmallEnvelope)
            envelope.type = type_
            envelope.payload = payload
            envelope.source = source
            envelope.id = prefix + str(count[0])
            envelope.time = clock()
            envelope.topic = topic
            queue.append(envelope)
            fut = waiter[0]
            if fut is not None:
                waiter[0] = None
                fut.set_result(None)
            return envelope

        task = loop.create_task(deliver())
        await asyncio.sleep(0)
        timer = Timer().__enter__()
        for first in range(0, len(items), BURST):
            for payload in items[first:first + BURST]:
                await publish("heartbeats", TYPE, payload, "machine")
            while queue:
                await asyncio.sleep(0)
        rate = timer.rate(len(items))
        task.cancel()
        assert received[0] == len(items), (received[0], len(items))
        return rate

    return asyncio.run(main())


def forge_path(items: list[dict[str, Any]]) -> Rate:
    async def main() -> Rate:
        transport = MemoryTransport("bus")
        await transport.connect()
        bus = MessageBus(schemas=registry(), clock=RealClock(), transports={"bus": transport})
        received = [0]

        def handler(envelope: Any) -> None:
            received[0] += 1

        await bus.subscribe("heartbeats", handler, owner="scheduler")
        publish = bus.publish
        timer = Timer().__enter__()
        for first in range(0, len(items), BURST):
            for payload in items[first:first + BURST]:
                await publish("heartbeats", TYPE, payload, source="machine")
            await transport.drained()
        rate = timer.rate(len(items))
        assert received[0] == len(items), (received[0], len(items))
        assert bus.stats.published[TYPE] == bus.stats.handled[TYPE] == len(items)
        assert not bus.dead_letters.total
        return rate

    return asyncio.run(main())


def raw_dispatch(items: list[dict[str, Any]]) -> Rate:
    received = [0]

    def handler(payload: dict[str, Any]) -> None:
        received[0] += 1

    subscribers: dict[str, list[Callable[[dict[str, Any]], None]]] = {"heartbeats": [handler]}
    timer = Timer().__enter__()
    for payload in items:
        for callback in subscribers["heartbeats"]:
            callback(payload)
    rate = timer.rate(len(items))
    assert received[0] == len(items)
    return rate


def span(values: list[float], fmt: str = "{:,.0f}") -> str:
    return f"{fmt.format(min(values))}-{fmt.format(max(values))}"


def verdict(values: list[float], target: float) -> str:
    return "met" if min(values) >= target else "met in some rounds" if max(values) >= target else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the first allowed)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))})
    items = payloads(args.messages)
    plain: list[Rate] = []
    forge: list[Rate] = []
    raw: list[Rate] = []
    print(f"load before: {Path('/proc/loadavg').read_text().strip()}; forge {compiled.describe()}")
    # one unmeasured round of each side first: the first run of a path pays one-time costs (lazy
    # imports, caches, the allocator growing) that no running plant pays per message
    warm = items[: min(len(items), 20_000)]
    plain_equivalent(warm), forge_path(warm), raw_dispatch(warm)
    for n in range(args.rounds):
        gc.collect()
        plain.append(plain_equivalent(items))
        gc.collect()
        forge.append(forge_path(items))
        gc.collect()
        raw.append(raw_dispatch(items))
        print(f"  round {n + 1}: plain {plain[-1].wall:,.0f} / {plain[-1].cpu:,.0f} cpu, forge {forge[-1].wall:,.0f} / "
              f"{forge[-1].cpu:,.0f} cpu msg/s, ratio {forge[-1].wall / plain[-1].wall:.2f} / "
              f"{forge[-1].cpu / plain[-1].cpu:.2f} cpu")
    print(f"load after:  {Path('/proc/loadavg').read_text().strip()}")
    print(f"messages per round: {args.messages:,}, rounds: {args.rounds}, one core; ranges over rounds")
    for clock in ("wall", "cpu"):
        p = [getattr(r, clock) for r in plain]
        f = [getattr(r, clock) for r in forge]
        ratios = [a / b for a, b in zip(f, p, strict=True)]
        print(f"per {clock} second:")
        print(f"  (a) plain-Python equivalent (asyncio, same check, small envelope): {span(p)} msg/s")
        print(f"  (b) forge publish → validate → handle                             : {span(f)} msg/s")
        print(f"  (c) raw dict dispatch of decoded payloads (reference)             : "
              f"{span([getattr(r, clock) for r in raw])} msg/s")
        print(f"  ratio (b)/(a) per round: {span(ratios, '{:.2f}')}; per message: plain "
              f"{span([1e6 / r for r in p], '{:.2f}')} µs, forge {span([1e6 / r for r in f], '{:.2f}')} µs")
        print(f"  best round of each (the least disturbed): plain {max(p):,.0f}, forge {max(f):,.0f} msg/s, "
              f"ratio {max(f) / max(p):.2f}")
        print(f"  target (b) ≥ {TARGET_RATE:,} msg/s: {verdict(f, TARGET_RATE)}; "
              f"target (b)/(a) ≥ {TARGET_RATIO}: {verdict(ratios, TARGET_RATIO)}")


if __name__ == "__main__":
    main()
