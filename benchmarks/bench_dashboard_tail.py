"""What the dashboard's live tail costs the bus hot path (issue 16): in-memory publish -> validate ->
handle throughput with and without the tail attached.

(a) baseline: ``MessageBus.publish`` over the in-memory transport to one subscribed handler, no
    observer — the best this path does (the same as bench_bus.py's Forge side).
(b) the same with the dashboard's :class:`MessageTail` subscribed ``#`` on the transport, as
    ``forge run --dashboard`` attaches it: every message counted, kept up to ``tail_per_second``.
(c) (b) with ``tail_per_second`` high enough to keep every message (no sampling): the tail's
    worst case, a ring append per message.

Bursts of 1,000, each handled before the next; rounds alternate (a), (b), (c) in this process;
figures are ranges over rounds, wall and CPU (``time.thread_time``) rates; the ratio is per round.

    python benchmarks/bench_dashboard_tail.py [--messages 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from typing import Any

from forge_core.bus import MessageBus
from forge_core.clock import RealClock
from forge_core.dashboard.tail import MessageTail
from forge_core.messages.schemas import SchemaRegistry
from forge_core.transport.memory import MemoryTransport

HEARTBEAT = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
             "required": ["title", "machineId"],
             "properties": {"title": {"const": "heartbeat"}, "machineId": {"type": "integer", "minimum": 0},
                            "bladeType": {"enum": ["A", "B"]}},
             "additionalProperties": False}
TYPE = "pasta.heartbeat"
BURST = 1000


def run(items: list[dict[str, Any]], tail_per_second: int | None) -> tuple[float, float, MessageTail | None]:
    async def main() -> tuple[float, float, MessageTail | None]:
        transport = MemoryTransport("bus")
        await transport.connect()
        schemas = SchemaRegistry()
        schemas.add(TYPE, HEARTBEAT)
        clock = RealClock()
        bus = MessageBus(schemas=schemas, clock=clock, transports={"bus": transport})
        received = [0]

        def handler(envelope: Any) -> None:
            received[0] += 1

        await bus.subscribe("heartbeats", handler, owner="scheduler")
        tail = None
        if tail_per_second is not None:
            tail = MessageTail(clock, per_second=tail_per_second)
            await tail.attach({"bus": transport})
        wall, cpu = time.perf_counter(), time.thread_time()
        for first in range(0, len(items), BURST):
            for payload in items[first:first + BURST]:
                await bus.publish("heartbeats", TYPE, payload, source="machine")
            await transport.drained()
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        assert received[0] == len(items)
        if tail is not None:
            assert tail.counts["heartbeats"] == len(items)
        return len(items) / wall, len(items) / cpu, tail

    return asyncio.run(main())


def span(values: list[float], fmt: str = "{:,.0f}") -> str:
    return f"{fmt.format(min(values))}-{fmt.format(max(values))}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    items = [{"title": "heartbeat", "machineId": i % 50, "bladeType": "AB"[i % 2]} for i in range(args.messages)]
    sides = {"(a) bus, no tail": None, "(b) bus + tail (200/s kept)": 200, "(c) bus + tail (all kept)": 10**9}
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    sampled = 0
    for _ in range(args.rounds):
        for name, per_second in sides.items():
            gc.collect()
            w, c, tail = run(items, per_second)
            wall[name].append(w)
            cpu[name].append(c)
            if tail is not None and per_second == 200:
                sampled = tail.sampled_out
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"{args.messages:,} messages x {args.rounds} rounds, load {load}")
    base = "(a) bus, no tail"
    for name in sides:
        ratio_w = [w / b for w, b in zip(wall[name], wall[base], strict=True)]
        ratio_c = [c / b for c, b in zip(cpu[name], cpu[base], strict=True)]
        print(f"{name:30} wall {span(wall[name])} msg/s  cpu {span(cpu[name])} msg/s  "
              f"ratio to (a): wall {span(ratio_w, '{:.2f}')}, cpu {span(ratio_c, '{:.2f}')}")
    print(f"(b) kept at most 200 per second; {sampled:,} counted only in its last round")


if __name__ == "__main__":
    main()
