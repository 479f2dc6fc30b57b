"""In-memory publish → validate → handle throughput, beside the raw dispatch limit.

(a) raw limit: a dict of topic → callbacks dispatching already-decoded payloads;
(b) Forge: ``MessageBus.publish`` (envelope, schema validation) over the in-memory transport
    to a subscribed handler, with a small heartbeat schema.
Both run in this process, pinned to one core. Target: (b) ≥ 100,000 validated messages/s.

    python benchmarks/bench_bus.py [--messages 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time

from forge_core import MessageBus, RealClock
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


BURST = 1000


def payloads(n: int) -> list[dict]:
    return [{"title": "heartbeat", "machineId": i % 50, "bladeType": "AB"[i % 2]} for i in range(n)]


def raw_limit(items: list[dict]) -> float:
    received = [0]

    def handler(payload: dict) -> None:
        received[0] += 1

    subscribers: dict[str, list] = {"heartbeats": [handler]}
    start = time.perf_counter()
    for payload in items:
        for callback in subscribers["heartbeats"]:
            callback(payload)
    elapsed = time.perf_counter() - start
    assert received[0] == len(items)
    return len(items) / elapsed


def forge_path(items: list[dict]) -> float:
    async def main() -> float:
        schemas = SchemaRegistry()
        schemas.add("pasta.heartbeat", HEARTBEAT)
        transport = MemoryTransport("bus")
        await transport.connect()
        bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"bus": transport})
        received = [0]

        def handler(envelope) -> None:
            received[0] += 1

        await bus.subscribe("heartbeats", handler, owner="scheduler")
        publish = bus.publish
        start = time.perf_counter()
        # Steady state: bursts of BURST messages, each handled before the next burst, so the
        # queue stays short as in a running plant (one 200k backlog would measure the GC).
        for first in range(0, len(items), BURST):
            for payload in items[first:first + BURST]:
                await publish("heartbeats", "pasta.heartbeat", payload, source="machine")
            await transport.drained()
        elapsed = time.perf_counter() - start
        assert received[0] == len(items), (received[0], len(items))
        assert not bus.dead_letters.total
        return len(items) / elapsed

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    items = payloads(args.messages)
    raw, forge = [], []
    for _ in range(args.rounds):
        gc.collect()
        raw.append(raw_limit(items))
        gc.collect()
        forge.append(forge_path(items))
    raw_rate, forge_rate = statistics.median(raw), statistics.median(forge)
    print(f"messages per round: {args.messages:,}, rounds: {args.rounds}, one core")
    print(f"(a) raw dict dispatch, decoded payloads : {raw_rate:12,.0f} msg/s")
    print(f"(b) forge publish→validate→handle        : {forge_rate:12,.0f} msg/s")
    print(f"ratio (b)/(a)                            : {forge_rate / raw_rate:12.3f}")
    print(f"per message: raw {1e6 / raw_rate:.2f} µs, forge {1e6 / forge_rate:.2f} µs")
    target = 100_000
    print(f"target (b) ≥ {target:,} msg/s: {'met' if forge_rate >= target else 'NOT met'}")


if __name__ == "__main__":
    main()
