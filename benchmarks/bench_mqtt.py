"""MQTT QoS 1 publish → receive: a raw paho-mqtt client pair beside a MqttTransport pair.

(a) raw: two paho-mqtt 2.x clients (MQTT 5, QoS 1, max_inflight 1000, network threads via
    loop_start), the publisher calling ``publish`` in a loop, the subscriber counting in on_message;
(b) Forge: two MqttTransports, each under a ``MessageBus`` with a small schema, so the envelope,
    CloudEvents user properties, decoding and validation on both sides are included; manual ack.
Same Mosquitto (started here on 127.0.0.1), same run, same message count. Throughput is messages
over the time until the last one is received; the ratio target is (b)/(a) ≥ 0.8. Latency is
publish → handler at a fixed 1,000 msg/s (target p99 < 5 ms).

    python benchmarks/bench_mqtt.py [--messages 20000] [--rounds 3] [--latency-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from forge_mqtt import MqttTransport
from forge_mqtt.testing import MosquittoServer
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from forge_core import MessageBus, RealClock
from forge_core.plugin import SchemaRegistry

HEARTBEAT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["title", "machineId"],
    "properties": {
        "title": {"const": "heartbeat"},
        "machineId": {"type": "integer", "minimum": 0},
        "sent": {"type": "number"},
    },
    "additionalProperties": False,
}


def payload(n: int, sent: float = 0.0) -> dict:
    return {"title": "heartbeat", "machineId": n % 50, "sent": sent}


# -- (a) raw paho ---------------------------------------------------------------------------------
def raw_client(broker: MosquittoServer) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def raw_throughput(broker: MosquittoServer, count: int) -> float:
    import orjson

    done = threading.Event()
    received = [0]

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        orjson.loads(message.payload)
        received[0] += 1
        if received[0] == count:
            done.set()

    sub = raw_client(broker)
    sub.on_message = on_message
    sub.subscribe("bench/raw", qos=1)
    pub = raw_client(broker)
    time.sleep(0.3)
    bodies = [orjson.dumps(payload(n)) for n in range(count)]
    start = time.perf_counter()
    for body in bodies:
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        pub.publish("bench/raw", body, qos=1, properties=props)
    if not done.wait(120):
        raise SystemExit(f"raw: only {received[0]} of {count} received")
    elapsed = time.perf_counter() - start
    for client in (pub, sub):
        client.loop_stop()
        client.disconnect()
    return count / elapsed


def raw_latency(broker: MosquittoServer, rate: int, seconds: float) -> list[float]:
    import orjson

    latencies: list[float] = []

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        latencies.append(time.perf_counter() - orjson.loads(message.payload)["sent"])

    sub = raw_client(broker)
    sub.on_message = on_message
    sub.subscribe("bench/rawlat", qos=1)
    pub = raw_client(broker)
    time.sleep(0.3)
    total = int(rate * seconds)
    start = time.perf_counter()
    for n in range(total):
        target = start + n / rate
        while (now := time.perf_counter()) < target:
            time.sleep(min(target - now, 0.0005))
        pub.publish("bench/rawlat", orjson.dumps(payload(n, time.perf_counter())), qos=1)
    deadline = time.monotonic() + 10
    while len(latencies) < total and time.monotonic() < deadline:
        time.sleep(0.01)
    for client in (pub, sub):
        client.loop_stop()
        client.disconnect()
    return latencies


# -- (b) Forge ------------------------------------------------------------------------------------
async def forge_pair(broker: MosquittoServer, data: Path) -> tuple[MessageBus, MessageBus, list[MqttTransport]]:
    buses, transports = [], []
    for role in ("pub", "sub"):
        schemas = SchemaRegistry()
        schemas.add("pasta.heartbeat", HEARTBEAT)
        transport = MqttTransport(role, host=broker.host, port=broker.port, data_dir=data / role,
                                  client_id=f"forge-{role}-{uuid.uuid4().hex[:6]}", death_certificates=False)
        await transport.connect()
        buses.append(MessageBus(schemas=schemas, clock=RealClock(), transports={role: transport}))
        transports.append(transport)
    return buses[0], buses[1], transports


async def forge_throughput(broker: MosquittoServer, count: int, data: Path) -> float:
    pub_bus, sub_bus, transports = await forge_pair(broker, data)
    received = [0]
    done = asyncio.Event()

    def handler(envelope: object) -> None:
        received[0] += 1
        if received[0] == count:
            done.set()

    await sub_bus.subscribe("bench/forge", handler, owner="bench")
    await asyncio.sleep(0.3)
    items = [payload(n) for n in range(count)]
    publish = pub_bus.publish
    start = time.perf_counter()
    for item in items:
        await publish("bench/forge", "pasta.heartbeat", item, source="machine")
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - start
    for transport in transports:
        await transport.close()
    return count / elapsed


async def forge_latency(broker: MosquittoServer, rate: int, seconds: float, data: Path) -> list[float]:
    pub_bus, sub_bus, transports = await forge_pair(broker, data)
    latencies: list[float] = []

    def handler(envelope: object) -> None:
        latencies.append(time.perf_counter() - envelope.payload["sent"])  # type: ignore[attr-defined]

    await sub_bus.subscribe("bench/forgelat", handler, owner="bench")
    await asyncio.sleep(0.3)
    total = int(rate * seconds)
    start = time.perf_counter()
    for n in range(total):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await pub_bus.publish("bench/forgelat", "pasta.heartbeat", payload(n, time.perf_counter()), source="m")
    deadline = time.monotonic() + 10
    while len(latencies) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    for transport in transports:
        await transport.close()
    return latencies


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return pick(0.50), pick(0.99), ordered[-1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    args = parser.parse_args()

    # Mosquitto drops QoS 1 messages for a subscriber with more than max_queued_messages (1000 by
    # default) waiting; a publisher in a tight loop outruns one subscriber, so lift the limit.
    config = "max_queued_messages 1000000\nmax_inflight_messages 1000\nset_tcp_nodelay true"
    with MosquittoServer(extra_config=config) as broker, tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        raw_rates, forge_rates = [], []
        for round_ in range(args.rounds):
            raw_rates.append(raw_throughput(broker, args.messages))
            forge_rates.append(asyncio.run(forge_throughput(broker, args.messages, data / f"r{round_}")))
            print(f"round {round_ + 1}: raw paho {raw_rates[-1]:,.0f} msg/s, forge {forge_rates[-1]:,.0f} msg/s")
        raw, forge = statistics.median(raw_rates), statistics.median(forge_rates)
        print(f"\nQoS 1 throughput, {args.messages:,} messages, median of {args.rounds} rounds (Mosquitto "
              f"{broker.host}:{broker.port}):")
        print(f"  raw paho-mqtt pair          {raw:>10,.0f} msg/s")
        print(f"  MqttTransport + MessageBus  {forge:>10,.0f} msg/s   (validation on both sides)")
        print(f"  ratio forge/raw             {forge / raw:>10.2f}       (target >= 0.80)")

        raw_lat = raw_latency(broker, args.rate, args.latency_seconds)
        forge_lat = asyncio.run(forge_latency(broker, args.rate, args.latency_seconds, data / "lat"))
        print(f"\nQoS 1 publish -> handler latency at {args.rate:,} msg/s for {args.latency_seconds:g} s:")
        for label, values in (("raw paho-mqtt pair", raw_lat), ("MqttTransport + MessageBus", forge_lat)):
            p50, p99, worst = percentiles(values)
            print(f"  {label:<27} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   max {worst:6.2f} ms   "
                  f"({len(values):,} received)")
        print("  target: MqttTransport p99 < 5 ms")


if __name__ == "__main__":
    main()
