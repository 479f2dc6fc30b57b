"""OPC UA tag change at the server → Forge message: latency p50/p99 and updates/s, beside a raw asyncua
client subscription doing the same in the same run (ratio).

The server is the simulated PLC in its own process (``forge_opcua.testing.PlcSimulatorServer``), its
``Diagnostics.Ramp`` tag counting up ``--rate`` times a second, each value stamped with the wall
time it was written (the source timestamp). Latency is the time a value arrives minus that stamp:

(a) raw: an asyncua ``Client`` subscription with a handler (asyncua's documented callback mode),
    one monitored item, the same publishing interval and queue size; the handler records arrival;
(b) Forge: a plant on the real clock with an ``opcua.source`` subscribing the same node; arrival is
    when the ``opcua.data_change`` message is delivered on the plant's in-memory bus (its tap), so
    the conversion to JSON, the backlog, schema validation and the bus are included.

They run one after the other against the same server, alternating, ``--rounds`` times each; both
count gaps in the ramp (lost updates). ``offered/s`` is what the server actually wrote while each
side measured (a loaded machine slows the server too): a side keeps up when its updates/s equals
its offered/s with no gaps and its latency does not grow. Same machine, same clock for stamp and
arrival.

    python benchmarks/bench_opcua.py [--rate 200] [--seconds 10] [--rounds 2] [--publishing 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from asyncua import Client
from forge_opcua.client.nodes import resolve_node_id
from forge_opcua.testing import PlcSimulatorServer

from forge_core import Envelope, RealClock
from forge_core.runtime import Runtime, load_plant


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    values: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def record(self, value: int, stamp: float) -> None:
        self.latencies.append(time.time() - stamp)
        self.values.append(value)

    @property
    def offered(self) -> int:
        """Values the server wrote between the first and the last one received (its real rate under load)."""
        return self.values[-1] - self.values[0] + 1 if self.values else 0

    @property
    def gaps(self) -> int:
        return sum(b - a - 1 for a, b in zip(self.values, self.values[1:], strict=False) if b > a + 1)


class _Handler:
    def __init__(self, run: Run) -> None:
        self.run = run

    def datachange_notification(self, node: object, value: int, data: object) -> None:
        stamp = data.monitored_item.Value.SourceTimestamp  # type: ignore[attr-defined]
        self.run.record(value, stamp.timestamp())


async def raw(server: PlcSimulatorServer, seconds: float, publishing: float, queue: int) -> Run:
    run = Run()
    async with Client(server.endpoint) as client:
        node = client.get_node(resolve_node_id(server.node("Diagnostics.Ramp"), await client.get_namespace_array()))
        subscription = await client.create_subscription(publishing * 1000, _Handler(run))
        await subscription.subscribe_data_change(node, queuesize=queue, sampling_interval=0)
        await asyncio.sleep(1.0)  # the initial value and the first publishes out of the way
        run.latencies.clear()
        run.values.clear()
        start = time.perf_counter()
        await asyncio.sleep(seconds)
        run.seconds = time.perf_counter() - start
        await subscription.delete()
    return run


async def forge(server: PlcSimulatorServer, seconds: float, publishing: float, queue: int, root: Path) -> Run:
    run = Run()
    recording = [False]
    params = {"endpoint": server.endpoint, "nodes": [{"node_id": server.node("Diagnostics.Ramp"), "tag": "ramp"}],
              "publishing_interval": publishing, "queue_size": queue, "adaptive_sampling": False}
    root.mkdir(parents=True, exist_ok=True)
    (root / "plant.yaml").write_text(
        "version: 1\nplant: {name: bench_opcua}\nplugins: [opcua]\ntransports: {bus: {type: memory}}\n"
        f"default_transport: bus\ncomponents: {{src: {{type: opcua.source, params: {json.dumps(params)}}}}}\n")
    plugins, manifest = load_plant(root)

    async def tap(topic: str, message: object) -> None:
        if recording[0] and isinstance(message, Envelope) and message.type == "opcua.data_change":
            run.record(message.payload["value"], message.payload["source_timestamp"])

    runtime = Runtime(manifest, plugins, clock=RealClock(), serve_health=False, tap=tap)
    await runtime.start()
    try:
        await asyncio.sleep(1.0)
        recording[0] = True
        start = time.perf_counter()
        await asyncio.sleep(seconds)
        run.seconds = time.perf_counter() - start
        recording[0] = False
    finally:
        await runtime.stop()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="tag updates per second at the server")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per round and side")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--publishing", type=float, default=0.05, help="publishing interval, seconds (both sides)")
    parser.add_argument("--queue", type=int, default=1000, help="server-side queue size per item (both sides)")
    args = parser.parse_args()
    raws: list[Run] = []
    forges: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp, PlcSimulatorServer(
            params={"machines": ["M1"], "timing": {"mean_running": 1e9}}, ramp_rate=args.rate) as server:
        for round_ in range(args.rounds):
            raws.append(asyncio.run(raw(server, args.seconds, args.publishing, args.queue)))
            forges.append(asyncio.run(forge(server, args.seconds, args.publishing, args.queue,
                                            Path(tmp) / f"plant{round_}")))
    a, b = _total(raws), _total(forges)
    print(f"tag change -> message, ramp {args.rate:g}/s, publishing {args.publishing * 1000:g} ms, "
          f"{args.rounds} x {args.seconds:g} s per side")
    print(f"{'':24}{'offered/s':>10}{'updates/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'gaps':>6}")
    for name, s in (("(a) raw asyncua", a), ("(b) Forge opcua.source", b)):
        print(f"{name:24}{s['offered']:10.1f}{s['per_second']:10.1f}{s['p50_ms']:9.1f}{s['p99_ms']:9.1f}"
              f"{s['gaps']:6d}")
    print(f"ratio (b)/(a): updates/s {b['per_second'] / a['per_second']:.3f}, p50 {b['p50_ms'] / a['p50_ms']:.2f}, "
          f"p99 {b['p99_ms'] / a['p99_ms']:.2f}")


def _total(runs: list[Run]) -> dict[str, float]:
    latencies = sorted(x for r in runs for x in r.latencies)
    seconds = sum(r.seconds for r in runs)
    return {"offered": sum(r.offered for r in runs) / seconds, "per_second": len(latencies) / seconds,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "gaps": sum(r.gaps for r in runs)}


if __name__ == "__main__":
    main()
