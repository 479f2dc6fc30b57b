"""What ``runtime.metrics.handler_latency: true`` costs the bus (docs/metrics.md).

The bus over the in-memory transport to one subscribed handler, as bench_bus.py's (b), with
(a) no telemetry (the default: /metrics reads the bus's counters at scrape time, nothing per message) and
(b) the telemetry ``handler_latency`` makes: a tracer that samples nothing, so the bus takes its
    instrumented path (a non-recording span, trace context injected, forge.messages.handled per
    component and the forge.handle.duration histogram recorded per message).
Rounds alternate; rates per CPU second of this thread (the wall rate on a loaded machine counts the
time other processes held the core). The ratio (b)/(a) is per round.

    python benchmarks/bench_metrics_latency.py [--messages 50000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_bus import BURST, TYPE, Rate, Timer, payloads, registry

from forge_core.bus import MessageBus
from forge_core.clock import RealClock
from forge_core.telemetry import Telemetry
from forge_core.transport.memory import MemoryTransport


def run(items: list[dict[str, Any]], telemetry: Telemetry | None) -> Rate:
    async def main() -> Rate:
        transport = MemoryTransport("bus")
        await transport.connect()
        bus = MessageBus(schemas=registry(), clock=RealClock(), transports={"bus": transport}, telemetry=telemetry)
        received = [0]

        def handler(envelope: Any) -> None:
            received[0] += 1

        await bus.subscribe("heartbeats", handler, owner="scheduler")
        timer = Timer().__enter__()
        for first in range(0, len(items), BURST):
            for payload in items[first:first + BURST]:
                await bus.publish("heartbeats", TYPE, payload, source="machine")
            await transport.drained()
        rate = timer.rate(len(items))
        assert received[0] == bus.stats.handled[TYPE] == len(items)
        return rate

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    items = payloads(args.messages)
    plain, timed, ratios = [], [], []
    for _ in range(args.rounds):
        a = run(items, None)
        b = run(items, Telemetry.from_settings(instrument_handlers=True))
        plain.append(a.cpu)
        timed.append(b.cpu)
        ratios.append(b.cpu / a.cpu)
    print(f"messages {args.messages:,} x {args.rounds} rounds; msg per CPU second")
    print(f"  (a) metrics default (no per-message work) : {min(plain):,.0f}-{max(plain):,.0f}")
    print(f"  (b) handler_latency: true                  : {min(timed):,.0f}-{max(timed):,.0f}")
    print(f"  (b)/(a) per round                          : {min(ratios):.2f}-{max(ratios):.2f}")


if __name__ == "__main__":
    main()
