"""Sparkplug B NDATA: our edge node -> Mosquitto -> our host -> the bus, beside a raw paho-mqtt pair.

(a) raw: two paho-mqtt 2.x clients (MQTT 5, network threads via loop_start), the same Sparkplug B
    protobuf (forge_sparkplug's sparkplug_b.proto, wire-identical to Eclipse Tahu's) as an expert would
    drive it: the publisher thread builds each NDATA (payload timestamp, seq 0-255, one metric by alias
    with its timestamp and the new Double value), serializes it and publishes it QoS 0; the subscriber
    parses each one in on_message, checks its seq and reads the value;
(b) Forge: a plant with a ``sparkplug.edge_node`` (one Double metric, store-and-forward on, waiting for
    its primary host) and that ``sparkplug.host`` (memory bus), a component-like driver publishing
    ``sparkplug.metric_update`` on the bus and counting the ``sparkplug.metrics`` the host puts on it:
    bus validation, report by exception, protobuf encode, seq, paho, decode, seq order, bus validation.
Both sides keep at most ``--window`` messages between publish and receipt (DATA is QoS 0, so paho has
no in-flight window to bound it; an unbounded publisher just fills the broker's queue); same broker,
same run, same message count. Throughput is messages over the time until the last one is received;
latency is publish -> received at a steady ``--rate`` (the value carries the send time).

``--lookback-cost``: also the CPU cost per live DATA of the edge node's ``host_lookback`` buffer
(``Lookback.record``, on by default with a primary host) and of the JSON copy it keeps (shared with
``link_proof``), each beside Forge's CPU per message in this run's throughput rounds (process CPU time).

    python benchmarks/bench_sparkplug.py [--messages 20000] [--rounds 3] [--window 1000] [--rate 1000 [250 ...]]
                                         [--lookback-cost]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from forge_mqtt.testing import MosquittoServer
from forge_sparkplug.proto.sparkplug_b_pb2 import Payload

from forge_core.runtime import Runtime, load_plant

FORGE_CPU: list[float] = []  # process CPU seconds per message of each Forge throughput round

DOUBLE = 10
ALIAS = 1


# -- (a) raw paho ---------------------------------------------------------------------------------
class RawPair:
    """A publisher and a subscriber paho client on one NDATA topic; ``on_value(value)`` per message."""

    def __init__(self, broker: MosquittoServer, on_value: Any) -> None:
        self.topic = f"spBv1.0/raw/NDATA/{uuid.uuid4().hex[:6]}"
        self.on_value = on_value
        self.expected_seq = 0
        self.seq_errors = 0
        self.sub = self._client(broker)
        self.sub.on_message = self._received
        subscribed = threading.Event()
        self.sub.on_subscribe = lambda *_: subscribed.set()
        self.sub.subscribe(self.topic, qos=0)
        if not subscribed.wait(10):
            raise SystemExit("raw: no SUBACK within 10 s")
        self.pub = self._client(broker)
        self.seq = 0

    @staticmethod
    def _client(broker: MosquittoServer) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
        )
        client.max_queued_messages_set(0)
        client.connect(broker.host, broker.port)
        client.loop_start()
        return client

    def publish(self, value: float) -> None:
        now = int(time.time() * 1000)
        message = Payload()
        message.timestamp = now
        message.seq = self.seq
        self.seq = (self.seq + 1) % 256
        metric = message.metrics.add()
        metric.alias = ALIAS
        metric.timestamp = now
        metric.double_value = value
        self.pub.publish(self.topic, message.SerializeToString(), qos=0)

    def _received(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        payload = Payload()
        payload.ParseFromString(message.payload)
        if payload.seq != self.expected_seq:
            self.seq_errors += 1
        self.expected_seq = (payload.seq + 1) % 256
        for metric in payload.metrics:
            if metric.alias == ALIAS and metric.HasField("double_value"):
                self.on_value(metric.double_value)

    def close(self) -> None:
        for client in (self.pub, self.sub):
            client.loop_stop()
            client.disconnect()


def raw_throughput(broker: MosquittoServer, count: int, window: int) -> tuple[float, int, int]:
    done = threading.Event()
    slots = threading.Semaphore(window)
    received = [0]

    def on_value(value: float) -> None:
        received[0] += 1
        slots.release()
        if received[0] == count:
            done.set()

    pair = RawPair(broker, on_value)
    start = time.perf_counter()
    for n in range(count):
        if not slots.acquire(timeout=10):
            break  # QoS 0 lost a window's worth: stop and report it
        pair.publish(float(n + 1))
    done.wait(30)
    elapsed = time.perf_counter() - start
    pair.close()
    return received[0] / elapsed, count - received[0], pair.seq_errors


def raw_latency(broker: MosquittoServer, rate: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    pair = RawPair(broker, lambda sent: latencies.append(time.perf_counter() - sent))
    total = int(rate * seconds)
    start = time.perf_counter()
    for n in range(total):
        target = start + n / rate
        while (now := time.perf_counter()) < target:
            time.sleep(min(target - now, 0.0005))
        pair.publish(time.perf_counter())
    deadline = time.monotonic() + 10
    while len(latencies) < total and time.monotonic() < deadline:
        time.sleep(0.01)
    pair.close()
    return latencies


# -- (b) Forge ------------------------------------------------------------------------------------
class ForgePlant:
    """An edge node and its primary host in one plant; ``on_value(value)`` per DATA metric on the bus."""

    def __init__(self, broker: MosquittoServer, root: Path, on_value: Any) -> None:
        self.group = f"bench{uuid.uuid4().hex[:6]}"
        self.root = root
        self.on_value = on_value
        mqtt_settings = {"host": broker.host, "port": broker.port}
        manifest = {
            "version": 1,
            "plant": {"name": "bench_sparkplug"},
            "plugins": ["sparkplug"],
            "transports": {"bus": {"type": "memory"}},
            "default_transport": "bus",
            # no failover here: a lease that survives a loaded machine's stalls
            "tactics": {"leader": {"use": "memory", "ttl": 30.0, "renew_every": 1.0, "retry_every": 0.2}},
            "components": {
                "edge": {
                    "type": "sparkplug.edge_node",
                    "params": {
                        "mqtt": mqtt_settings,
                        "group": self.group,
                        "node": "n1",
                        "primary_host": f"h-{self.group}",
                        "metrics": [{"name": "Value", "datatype": "Double", "initial": 0.0}],
                    },
                },
                "host": {
                    "type": "sparkplug.host",
                    "params": {"mqtt": mqtt_settings, "host_id": f"h-{self.group}", "groups": [self.group]},
                },
            },
            "runtime": {"health": False},
        }
        root.mkdir(parents=True)
        (root / "plant.yaml").write_text(json.dumps(manifest))
        self.updates = f"sparkplug/update/{self.group}/n1"
        self.births = 0

    async def __aenter__(self) -> ForgePlant:
        plugins, manifest = load_plant(self.root / "plant.yaml")
        self.runtime = Runtime(manifest, plugins, serve_health=False, data_dir=self.root / ".forge")
        await self.runtime.start()
        await self.runtime.bus.subscribe("sparkplug/data/#", self._data, owner="bench")
        self.host = self.runtime.supervisors["host"].instance
        self.edge = self.runtime.supervisors["edge"].instance
        deadline = time.monotonic() + 60
        settled = 0
        while settled < 10:  # 0.5 s with every birth the node sent on the bus (the host primary, no rebirth due)
            if time.monotonic() > deadline:
                raise SystemExit(f"forge: the node's births did not reach the bus within 60 s: {self.host.health()}")
            ready = self.births and self.births == self.edge.stats["births"] and self.edge.in_session
            settled = settled + 1 if ready else 0
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runtime.stop()

    def _data(self, envelope: Any) -> None:
        if envelope.payload["kind"] == "birth":
            self.births += 1
        else:
            for metric in envelope.payload["metrics"]:
                self.on_value(metric["value"])

    async def publish(self, value: float) -> None:
        await self.runtime.bus.publish(
            self.updates, "sparkplug.metric_update", {"metrics": [{"name": "Value", "value": value}]}, source="bench"
        )


async def forge_throughput(broker: MosquittoServer, count: int, window: int, root: Path) -> tuple[float, int, int]:
    slots = asyncio.Semaphore(window)
    done = asyncio.Event()
    received = [0]

    def on_value(value: float) -> None:
        received[0] += 1
        slots.release()
        if received[0] == count:
            done.set()

    async with ForgePlant(broker, root, on_value) as plant:
        start = time.perf_counter()
        cpu = time.process_time()
        for n in range(count):
            try:
                await asyncio.wait_for(slots.acquire(), 10)
            except TimeoutError:
                break
            await plant.publish(float(n + 1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 30)
        elapsed = time.perf_counter() - start
        FORGE_CPU.append((time.process_time() - cpu) / max(1, received[0]))
        gaps = plant.host.stats["seq_gaps"]
    return received[0] / elapsed, count - received[0], gaps


async def forge_latency(broker: MosquittoServer, rate: int, seconds: float, root: Path) -> list[float]:
    latencies: list[float] = []
    async with ForgePlant(broker, root, lambda sent: latencies.append(time.perf_counter() - sent)) as plant:
        total = int(rate * seconds)
        start = time.perf_counter()
        for n in range(total):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await plant.publish(time.perf_counter())
        deadline = time.monotonic() + 10
        while len(latencies) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    return latencies


def lookback_cost(count: int = 200_000, rate: float = 2000.0) -> tuple[float, float]:
    """CPU seconds per live DATA of ``Lookback.record`` (the default 180 s window at ``rate`` DATA/s, so at its
    100,000-message bound: every record also drops one) and of the JSON copy the edge node records."""
    from forge_sparkplug.node.lookback import Lookback

    lookback = Lookback(window=180.0, max_messages=100_000, max_bytes=32 * 1024 * 1024)
    start = time.process_time()
    bodies = [json.dumps({"d": None, "m": [["Value", float(n), 1_700_000_000_000 + n]]}).encode() for n in range(count)]
    copy = (time.process_time() - start) / count
    start = time.process_time()
    for n, body in enumerate(bodies):
        lookback.record(body, n / rate)
    return (time.process_time() - start) / count, copy


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return pick(0.50), pick(0.99), ordered[-1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=int, default=1000, help="most messages between publish and receipt")
    parser.add_argument("--rate", type=int, nargs="+", default=[1000], help="steady rates of the latency runs")
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    parser.add_argument("--lookback-cost", action="store_true", help="also the host_lookback buffer's CPU per DATA")
    args = parser.parse_args()

    load_before = os.getloadavg()
    config = "max_queued_messages 1000000\nset_tcp_nodelay true"
    with MosquittoServer(extra_config=config) as broker, tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        rates: tuple[list[float], list[float]] = ([], [])
        lost, gaps = [0, 0], [0, 0]
        for round_ in range(args.rounds):
            results = (
                raw_throughput(broker, args.messages, args.window),
                asyncio.run(forge_throughput(broker, args.messages, args.window, data / f"r{round_}")),
            )
            for side, (rate, missing, gap) in enumerate(results):
                rates[side].append(rate)
                lost[side] += missing
                gaps[side] += gap
            print(f"round {round_ + 1}: raw paho {rates[0][-1]:,.0f} msg/s, forge {rates[1][-1]:,.0f} msg/s")
        raw, forge = statistics.median(rates[0]), statistics.median(rates[1])
        print(
            f"\nSparkplug NDATA (QoS 0) throughput, {args.messages:,} messages, window {args.window:,}, median of "
            f"{args.rounds} rounds (Mosquitto {broker.host}:{broker.port}):"
        )
        for label, rate, side in (
            ("raw paho-mqtt pair, protobuf per message", raw, 0),
            ("edge_node -> host -> bus", forge, 1),
        ):
            print(f"  {label:<41} {rate:>9,.0f} msg/s   ({lost[side]} lost, {gaps[side]} seq gaps)")
        print(f"  ratio forge/raw                           {forge / raw:>9.2f}")
        if args.lookback_cost:
            record, copy = lookback_cost()
            per_message = statistics.median(FORGE_CPU)
            print(
                f"  Forge CPU per message (process, median of rounds) {per_message * 1e6:.0f} us; host_lookback's "
                f"record {record * 1e6:.2f} us ({record / per_message:.2%}), the JSON copy it keeps (shared with "
                f"link_proof) {copy * 1e6:.2f} us ({copy / per_message:.2%})"
            )

        for rate in args.rate:
            raw_lat = raw_latency(broker, rate, args.latency_seconds)
            forge_lat = asyncio.run(forge_latency(broker, rate, args.latency_seconds, data / f"lat{rate}"))
            print(f"\nNDATA publish -> received latency at {rate:,} msg/s for {args.latency_seconds:g} s:")
            for label, values in (("raw paho-mqtt pair", raw_lat), ("edge_node -> host -> bus", forge_lat)):
                p50, p99, worst = percentiles(values)
                print(
                    f"  {label:<25} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   max {worst:7.2f} ms   "
                    f"({len(values):,} of {int(rate * args.latency_seconds):,} received)"
                )
    load_after = os.getloadavg()
    print(f"\nload average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
