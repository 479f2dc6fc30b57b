"""Store-and-forward replay after a 5-minute outage: the OEE line's edge node -> Mosquitto -> host, beside raw paho.

The outage: an edge node (``sparkplug.edge_node``, the oee_line's device metrics, primary host
``analytics``) runs while its host is away, so every update goes to its outbox (the outbox tactic,
SQLite). ``--devices`` machines report GoodCount and TotalCount once a second for ``--outage``
seconds: devices x outage stored updates (default 100 x 300 = 30,000), timestamps 1 s apart.

(a) raw: the same stored rows (a copy of the outbox file) published by a paho-mqtt 2.x client as
    an expert would: rows read in pages of 500 in order, each built into the same Sparkplug DDATA
    protobuf (two metrics, is_historical, seq), published QoS 0 with at most ``--window`` unreceived,
    each page deleted in one transaction once published; a second paho client parses each message;
(b) Forge: the host comes up (a second runtime: ``sparkplug.host``), publishes STATE online, the edge
    node births and replays its outbox in order as historical DDATA (each row removed once paho wrote
    it), the host puts each on the bus as ``sparkplug.metrics``.
Rate = stored updates / (last received - first sent; Forge: from the NBIRTH at the host). Alternating
rounds; the ratio is Forge / raw.

    python benchmarks/bench_oee_replay.py [--devices 100] [--outage 300] [--rounds 2] [--window 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
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

UINT32 = 7
START_MS = 1_704_067_200_000


def manifest(broker: MosquittoServer, group: str, devices: int, component: str) -> dict[str, Any]:
    mqtt_settings = {"host": broker.host, "port": broker.port}
    metrics = [{"name": "GoodCount", "datatype": "UInt32"}, {"name": "TotalCount", "datatype": "UInt32"}]
    spec = {"edge": {"type": "sparkplug.edge_node", "params": {
                "mqtt": mqtt_settings, "group": group, "node": "edge-1", "primary_host": f"a-{group}",
                "devices": {f"D{i:03d}": {"metrics": metrics} for i in range(devices)}}},
            "host": {"type": "sparkplug.host", "params": {"mqtt": mqtt_settings, "host_id": f"a-{group}",
                                                          "groups": [group]}}}
    return {"version": 1, "plant": {"name": f"bench_oee_replay_{component}"}, "plugins": ["sparkplug"],
            "transports": {"bus": {"type": "memory"}}, "default_transport": "bus",
            "tactics": {"leader": {"use": "memory", "ttl": 30.0, "renew_every": 1.0, "retry_every": 0.2}},
            "components": {component: spec[component]}, "runtime": {"health": False}}


async def start(root: Path, doc: dict[str, Any]) -> Runtime:
    plugins, loaded = _loaded(root, doc)
    runtime = Runtime(loaded, plugins, serve_health=False, data_dir=root / ".forge")
    await runtime.start()
    return runtime


async def fill(broker: MosquittoServer, root: Path, group: str, devices: int, outage: int) -> tuple[Runtime, Path]:
    """The edge node alone (its host away): devices x outage updates stored. Returns it and its outbox file."""
    edge_rt = await start(root / "edge", manifest(broker, group, devices, "edge"))
    edge = edge_rt.supervisors["edge"].instance
    assert edge_rt.bus is not None and edge is not None
    topic = f"sparkplug/update/{group}/edge-1"
    for s in range(outage):
        ms = START_MS + s * 1000
        for d in range(devices):
            await edge_rt.bus.publish(topic, "sparkplug.metric_update", {"device": f"D{d:03d}", "metrics": [
                {"name": "GoodCount", "value": s, "timestamp": ms}, {"name": "TotalCount", "value": s + 1,
                                                                     "timestamp": ms}]}, source="bench")
    want = devices * outage
    deadline = time.monotonic() + 600
    while edge.outbox.depth < want:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {edge.outbox.depth} of {want} updates stored")
        await asyncio.sleep(0.05)
    return edge_rt, Path(edge.outbox.path)


async def forge_replay(broker: MosquittoServer, root: Path, group: str, devices: int, edge_rt: Runtime,
                       want: int) -> tuple[float, int]:
    got = [0]
    first: list[float] = []
    last = [0.0]
    done = asyncio.Event()

    def seen(envelope: Any) -> None:
        body = envelope.payload
        if body["kind"] == "birth" and body["device"] is None and not first:
            first.append(time.perf_counter())
        elif body["kind"] == "data":
            got[0] += sum(1 for m in body["metrics"] if m["historical"] and m["name"] == "TotalCount")
            last[0] = time.perf_counter()
            if got[0] >= want:
                done.set()

    plugins, loaded = _loaded(root / "host", manifest(broker, group, devices, "host"))
    host_rt = Runtime(loaded, plugins, serve_health=False, data_dir=root / "host" / ".forge")
    await host_rt.start()
    assert host_rt.bus is not None
    await host_rt.bus.subscribe("sparkplug/data/#", seen, owner="bench")
    try:
        async with asyncio.timeout(600):
            await done.wait()
    except TimeoutError:
        pass
    await host_rt.stop()
    await edge_rt.stop()
    return (got[0] / (last[0] - first[0]) if first and last[0] > first[0] else 0.0), want - got[0]


def _loaded(root: Path, doc: dict[str, Any]) -> tuple[Any, Any]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "plant.yaml").write_text(json.dumps(doc))
    return load_plant(root / "plant.yaml")


def raw_replay(broker: MosquittoServer, outbox: Path, window: int) -> tuple[float, int]:
    """paho publishes the stored rows of ``outbox`` (a copy) as DDATA; another paho client receives them."""
    topic = f"spBv1.0/raw{uuid.uuid4().hex[:6]}/DDATA/edge-1"
    db = sqlite3.connect(outbox, isolation_level=None)
    want = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    slots = threading.Semaphore(window)
    received = [0]
    last = [0.0]
    done = threading.Event()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        payload = Payload()
        payload.ParseFromString(message.payload)
        received[0] += 1
        last[0] = time.perf_counter()
        slots.release()
        if received[0] == want:
            done.set()

    def client(name: str) -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:6]}",
                        protocol=mqtt.MQTTv5)
        c.max_queued_messages_set(0)
        c.connect(broker.host, broker.port, 30)
        c.loop_start()
        return c

    sub = client("sub")
    subscribed = threading.Event()
    sub.on_message = on_message
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.subscribe(f"{topic}/+", qos=0)
    subscribed.wait(10)
    pub = client("pub")
    time.sleep(0.2)
    seq = 0
    start = time.perf_counter()
    while rows := db.execute("SELECT seq, body FROM outbox ORDER BY seq LIMIT 500").fetchall():
        for _, body in rows:
            item = json.loads(body)
            payload = Payload(timestamp=int(time.time() * 1000), seq=seq)
            for name, value, stamp in item["m"]:
                m = payload.metrics.add(name=name, datatype=UINT32, timestamp=stamp, is_historical=True)
                m.int_value = value
            seq = (seq + 1) % 256
            if not slots.acquire(timeout=10):
                break
            pub.publish(f"{topic}/{item['d']}", payload.SerializeToString(), qos=0)
        db.execute("BEGIN")
        db.execute("DELETE FROM outbox WHERE seq <= ?", (rows[-1][0],))
        db.execute("COMMIT")
    done.wait(30)
    rate = received[0] / (last[0] - start) if last[0] > start else 0.0
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    db.close()
    return rate, want - received[0]


async def round_(broker: MosquittoServer, tmp: Path, args: argparse.Namespace, n: int) -> tuple[float, float, int, int]:
    group = f"oee{uuid.uuid4().hex[:6]}"
    root = tmp / f"round{n}"
    want = args.devices * args.outage
    t = time.perf_counter()
    edge_rt, outbox = await fill(broker, root, group, args.devices, args.outage)
    filled = time.perf_counter() - t
    copy = root / "raw-outbox.db"
    src = sqlite3.connect(outbox)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    order = ("raw", "forge") if n % 2 == 0 else ("forge", "raw")
    rates: dict[str, tuple[float, int]] = {}
    for side in order:
        if side == "raw":
            rates["raw"] = await asyncio.to_thread(raw_replay, broker, copy, args.window)
        else:
            rates["forge"] = await forge_replay(broker, root, group, args.devices, edge_rt, want)
    print(f"round {n + 1}: {want:,} stored in {filled:.1f} s; replay forge {rates['forge'][0]:,.0f} updates/s "
          f"(lost {rates['forge'][1]}), raw paho {rates['raw'][0]:,.0f}/s (lost {rates['raw'][1]}); "
          f"forge/raw {rates['forge'][0] / rates['raw'][0]:.2f}; load {loadavg()}")
    return rates["forge"][0], rates["raw"][0], rates["forge"][1], rates["raw"][1]


async def amain(args: argparse.Namespace) -> None:
    with MosquittoServer() as broker, tempfile.TemporaryDirectory() as tmp:
        results = [await round_(broker, Path(tmp), args, n) for n in range(args.rounds)]
    forge, raw = [r[0] for r in results], [r[1] for r in results]
    ratios = [f / r for f, r in zip(forge, raw, strict=True)]
    print(f"replay of a {args.outage} s outage of {args.devices} devices ({args.devices * args.outage:,} updates): "
          f"forge {min(forge):,.0f}-{max(forge):,.0f}/s, raw paho {min(raw):,.0f}-{max(raw):,.0f}/s, forge/raw "
          f"{min(ratios):.2f}-{max(ratios):.2f} (median {statistics.median(forge) / statistics.median(raw):.2f}); "
          f"lost forge {sum(r[2] for r in results)}, raw {sum(r[3] for r in results)}")


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--outage", type=int, default=300, help="seconds of outage (one update per device per second)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--window", type=int, default=1000)
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
