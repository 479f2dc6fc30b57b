"""The OEE line's tag update at the PLC -> stored row, p50/p99, beside the 250 ms target and the OPC UA floor.

The PLC is the simulated PLC in its own process (``forge_opcua.testing.PlcSimulatorServer``, asyncua),
its ``Diagnostics.Ramp`` counting up ``--rate`` times a second, each value stamped with the wall time
it was written (source timestamp). Alternating, ``--rounds`` times, ``--seconds`` each:

The server sends what changed once per publishing interval, on a grid that starts when the subscription
is made; a ramp at a rate that divides it (4/s against 0.25 s) is phase-locked to that grid, so each
subscription saw one fixed delay drawn by chance in [0, interval) and two subscriptions (floor, Forge)
could differ by 100+ ms with no code involved. The default rate, 3.7/s, sweeps the phase: every
subscription sees the whole [0, interval) spread, as tag changes at a real machine would.

(a) floor: a raw asyncua ``Client`` subscription on that node with the plant's intervals (publishing
    ``--publishing``, sampling 0.25 s, queue 10); latency = arrival in the handler - source timestamp.
    No client of this server can do better with these intervals: it is the OPC UA part alone;
(b) Forge: the OEE line's chain from its plant.yaml settings, the node read as tag ``M1/Ramp``:
    ``opcua.source`` (same intervals, adaptive sampling off) -> ``oee_line.gateway`` ->
    ``sparkplug.edge_node`` -> Mosquitto -> ``sparkplug.host`` -> ``oee_line.historian`` -> PostgreSQL;
    latency = when the historian's transaction holding the row committed - source timestamp (the
    benchmark wraps ``TimeSeriesStore.write`` to read the clock after it returns). Forge's own part:
    commit - when the same notification reached ``opcua.source``'s handler (the benchmark wraps it).

Printed: Forge's p50/p99 against the 250 ms target (ratio), the floor's, Forge / floor, and Forge's
own part (OPC UA arrival -> committed row) with its share of the end-to-end p50.

    python benchmarks/bench_oee_tag_row.py [--rate 3.7] [--publishing 0.1] [--seconds 20] [--rounds 2]
                                           [--url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from asyncua import Client
from forge_mqtt.testing import MosquittoServer
from forge_opcua.client.nodes import resolve_node_id
from forge_opcua.components.source import OpcUaSource
from forge_opcua.testing import PlcSimulatorServer

from forge_core import RealClock
from forge_core.runtime import Runtime, load_plant
from forge_core.testing import PostgresServer

TARGET = 0.250
SAMPLING = 0.25  # the original plant's
PLANT = Path(__file__).resolve().parents[1] / "examples" / "oee_line" / "plant.yaml"


class _Handler:
    def __init__(self, out: list[float]) -> None:
        self.out = out
        self.recording = False

    def datachange_notification(self, node: object, value: int, data: Any) -> None:
        if self.recording:
            self.out.append(time.time() - data.monitored_item.Value.SourceTimestamp.timestamp())


async def floor(server: PlcSimulatorServer, seconds: float, publishing: float) -> list[float]:
    out: list[float] = []
    handler = _Handler(out)
    async with Client(server.endpoint) as client:
        node = client.get_node(resolve_node_id(server.node("Diagnostics.Ramp"), await client.get_namespace_array()))
        subscription = await client.create_subscription(publishing * 1000, handler)
        await subscription.subscribe_data_change(node, queuesize=10, sampling_interval=SAMPLING * 1000)
        await asyncio.sleep(1.0)
        handler.recording = True
        await asyncio.sleep(seconds)
        handler.recording = False
        await subscription.delete()
    return out


def plant(server: PlcSimulatorServer, broker: MosquittoServer, url: str, publishing: float) -> dict[str, Any]:
    mqtt = {"host": broker.host, "port": broker.port, "keepalive": 5}
    return {
        "version": 1,
        "plant": {"name": "bench_oee_tag_row"},
        "plugins": ["oee_line", "opcua", "sparkplug", "mqtt"],
        "transports": {"bus": {"type": "memory"}},
        "default_transport": "bus",
        "tactics": {"leader": {"use": "memory", "ttl": 30.0, "renew_every": 1.0, "retry_every": 0.2}},
        "components": {
            "source": {
                "type": "opcua.source",
                "params": {
                    "endpoint": server.endpoint,
                    "nodes": [{"node_id": server.node("Diagnostics.Ramp"), "tag": "M1/Ramp"}],
                    "publishing_interval": publishing,
                    "sampling_interval": SAMPLING,
                    "adaptive_sampling": False,
                },
            },
            "gateway": {"type": "oee_line.gateway", "params": {"group": "line1", "node": "edge-1"}},
            "edge": {
                "type": "sparkplug.edge_node",
                "params": {
                    "mqtt": mqtt,
                    "group": "line1",
                    "node": "edge-1",
                    "primary_host": "analytics",
                    "devices": {"M1": {"metrics": [{"name": "Ramp", "datatype": "Int64"}]}},
                },
            },
            "host": {"type": "sparkplug.host", "params": {"mqtt": mqtt, "host_id": "analytics", "groups": ["line1"]}},
            "historian": {"type": "oee_line.historian"},
        },
        "storage": {"url": url, "migrate_on_start": True},
        "runtime": {"health": False},
    }


def plant_publishing() -> float:
    """The publishing interval examples/oee_line/plant.yaml gives its source."""
    for line in PLANT.read_text().splitlines():
        if line.strip().startswith("publishing_interval:"):
            return float(line.split(":", 1)[1].split("#")[0])
    return 0.25  # opcua.source's default


async def forge(
    server: PlcSimulatorServer,
    broker: MosquittoServer,
    url: str,
    seconds: float,
    root: Path,
    publishing: float,
    own: list[float],
) -> list[float]:
    """End-to-end latencies; ``own`` gets Forge's part of each (OPC UA arrival -> committed)."""
    out: list[float] = []
    recording = [False]
    arrived: dict[float, float] = {}  # Ramp value -> when opcua.source's handler had it
    handler = OpcUaSource._on_data_change

    def on_change(self: OpcUaSource, tag: Any, value: Any) -> None:
        if tag.name == "M1/Ramp" and value.Value is not None:
            arrived[float(value.Value.Value)] = time.time()
        handler(self, tag, value)

    OpcUaSource._on_data_change = on_change  # type: ignore[method-assign]  # before start: the session binds it
    root.mkdir(parents=True, exist_ok=True)
    (root / "plant.yaml").write_text(json.dumps(plant(server, broker, url, publishing)))
    plugins, manifest = load_plant(root / "plant.yaml")
    runtime = Runtime(manifest, plugins, clock=RealClock(), serve_health=False, data_dir=root / ".forge")
    await runtime.start()
    historian: Any = runtime.supervisors["historian"].instance
    edge: Any = runtime.supervisors["edge"].instance
    write = historian.store.write

    def timed(samples: Any, states: Any = ()) -> int:
        stored = write(samples, states)
        now = time.time()  # committed
        if recording[0]:
            for s in samples:
                if s.metric == "Ramp":
                    out.append(now - s.time)
                    if (at := arrived.pop(s.value, None)) is not None:
                        own.append(now - at)
        return stored

    historian.store.write = timed
    try:
        deadline = time.monotonic() + 60
        while not (edge.in_session and historian.stats["stored"] > 0):
            if time.monotonic() > deadline:
                raise SystemExit(f"forge: no row stored within 60 s: edge {edge.health()}, historian {historian.stats}")
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        recording[0] = True
        await asyncio.sleep(seconds)
        recording[0] = False
    finally:
        OpcUaSource._on_data_change = handler  # type: ignore[method-assign]
        await runtime.stop()
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def loadavg() -> str:
    return str(Path("/proc/loadavg").read_text().split(" ", 3)[:3])


async def amain(args: argparse.Namespace) -> None:
    pg = PostgresServer().start() if args.url is None else None
    url = args.url or (pg.url if pg is not None else "")
    try:
        with (
            PlcSimulatorServer(ramp_rate=args.rate) as server,
            MosquittoServer() as broker,
            tempfile.TemporaryDirectory() as tmp,
        ):
            forge_all: list[float] = []
            floor_all: list[float] = []
            own: list[float] = []
            for n in range(args.rounds):
                for side in ("floor", "forge") if n % 2 == 0 else ("forge", "floor"):
                    if side == "floor":
                        got = await floor(server, args.seconds, args.publishing)
                        floor_all += got
                    else:
                        got = await forge(server, broker, url, args.seconds, Path(tmp) / f"r{n}", args.publishing, own)
                        forge_all += got
                    print(
                        f"round {n + 1} {side}: {len(got)} updates, p50 {pct(got, 0.5) * 1000:.1f} ms, "
                        f"p99 {pct(got, 0.99) * 1000:.1f} ms; load {loadavg()}"
                    )
    finally:
        if pg is not None:
            pg.stop()
    f50, f99 = pct(forge_all, 0.5), pct(forge_all, 0.99)
    o50, o99 = pct(floor_all, 0.5), pct(floor_all, 0.99)
    print(
        f"tag -> stored row ({len(forge_all)} updates): forge p50 {f50 * 1000:.1f} ms, p99 {f99 * 1000:.1f} ms "
        f"(p99 / 250 ms target = {f99 / TARGET:.2f}); OPC UA floor p50 {o50 * 1000:.1f} ms, p99 {o99 * 1000:.1f} ms; "
        f"forge / floor p50 {f50 / o50:.2f}, p99 {f99 / o99:.2f}; mean forge {statistics.fmean(forge_all) * 1000:.1f}"
        f" ms; load {loadavg()}"
    )
    print(
        f"publishing {args.publishing * 1000:.0f} ms, sampling {SAMPLING * 1000:.0f} ms, ramp {args.rate}/s; Forge's "
        f"own part (OPC UA arrival at opcua.source -> committed row, {len(own)} updates): p50 "
        f"{pct(own, 0.5) * 1000:.1f} ms, p99 {pct(own, 0.99) * 1000:.1f} ms = {pct(own, 0.5) / f50:.0%} of the "
        f"end-to-end p50"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rate",
        type=float,
        default=3.7,
        help="tag updates per second (not a divisor of the publishing interval's rate: see the docstring)",
    )
    ap.add_argument(
        "--publishing",
        type=float,
        default=plant_publishing(),
        help="the source's publishing interval, s (default: examples/oee_line/plant.yaml's)",
    )
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--url", help="PostgreSQL SQLAlchemy URL (default: a throwaway cluster)")
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
