"""Malformed messages per second a plant absorbs at the MQTT edge (issue 11 §3).

A plant (one process: three forge.heartbeat machines beating every second over MQTT, a
forge.heartbeat_monitor, dead letters stored in SQLite) on a real Mosquitto receives malformed
bodies at a rising rate from a separate raw paho process, spread over ``--sources`` topics (each
under the quarantine threshold, so every letter goes the full recording path). A rate passes
when: no machine is declared DOWN, every message sent became a dead letter, and every letter is
accounted for (recorded + dropped-counted + quarantined = total, nothing pending). Beside it, the
raw limit: raw paho publishing the same bytes through the same Mosquitto to a raw paho
subscriber, measured in the same run.

    python benchmarks/bench_deadletter_flood.py [--rates 500,1000,2000,3000,4000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from forge_mqtt.testing import MosquittoServer

from forge_core.runtime import Runtime, load_plant
from forge_core.testing import PostgresServer
from forge_core.transport import fast_parse_time

BODY = b'{"title": "heartbeat", "machineId": 12, "oops"'  # truncated JSON: a decode_error

MANIFEST = """
version: 1
plant: {{name: flood}}
plugins: [mqtt]
transports:
  edge: {{type: mqtt, settings: {{host: 127.0.0.1, port: {port}, client_id: {client}}}}}
components:
  machine: {{type: forge.heartbeat, replicas: 3, params: {{interval: 1.0}}}}
  monitor: {{type: forge.heartbeat_monitor, params: {{topics: ["forge/heartbeat/+", "junk/+"]}}}}
tactics:
  heartbeat: {{interval: 1.0}}
storage: {{url: "{store}", migrate_on_start: true}}
"""

SQLITE = "sqlite:///{plant_dir}/plant.db"


def _client(name: str) -> mqtt.Client:
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:6]}",
                       protocol=mqtt.MQTTv5)


def _flood(port: int, rate: int, seconds: float, sources: int, sent: Any) -> None:
    """Publish ``rate`` malformed msg/s for ``seconds`` (paced per 10 ms), QoS 0."""
    client = _client("flood")
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    n = 0
    start = time.perf_counter()
    total = int(rate * seconds)
    while n < total:
        due = int((time.perf_counter() - start) * rate) + 1
        while n < min(due, total):
            client.publish(f"junk/{n % sources}", BODY, qos=0)
            n += 1
        time.sleep(0.005)
    time.sleep(0.5)
    client.loop_stop()
    client.disconnect()
    sent.value = n


def raw_limit(port: int, count: int = 100_000) -> float:
    """Messages/s through Mosquitto from a raw paho publisher to a raw paho subscriber."""
    got = [0]
    last = [0.0]
    done = threading.Event()
    sub = _client("rawsub")

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        got[0] += 1
        last[0] = time.perf_counter()
        if got[0] >= count:
            done.set()

    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("rawjunk/+", qos=0)
    sub.loop_start()
    time.sleep(0.3)
    pub = _client("rawpub")
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    start = time.perf_counter()
    for i in range(count):
        pub.publish(f"rawjunk/{i % 50}", BODY, qos=0)
    seen = -1
    while not done.wait(1.0) and got[0] != seen:  # until everything came or nothing more comes (QoS 0 drops)
        seen = got[0]
    elapsed = last[0] - start
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    if got[0] < count:
        print(f"raw limit: {count - got[0]:,} of {count:,} QoS 0 messages dropped by the broker (slow raw subscriber)")
    return got[0] / elapsed if elapsed > 0 else 0.0


def run_rate(port: int, rate: int, seconds: float, sources: int, store: str = SQLITE) -> dict[str, Any]:
    plant_dir = Path(tempfile.mkdtemp(prefix="flood-"))
    (plant_dir / "plant.yaml").write_text(MANIFEST.format(port=port, client=f"flood-plant-{uuid.uuid4().hex[:6]}",
                                                          store=store))
    plugins, manifest = load_plant(plant_dir)

    async def main() -> dict[str, Any]:
        runtime = Runtime(manifest, plugins, serve_health=False)
        await runtime.start()
        await asyncio.sleep(3.0)  # machines discovered UP
        edge = runtime.transports["edge"]
        probe = {"lag": 0.0, "inbox": 0, "beat_delay": 0.0, "beats_heard": 0}

        async def beat(topic: str, raw: Any) -> None:  # beside the monitor, on the same broker subscription
            sent_at = fast_parse_time(raw.headers["time"])  # MQTT 5: CloudEvents attributes as user properties
            probe["beat_delay"] = max(probe["beat_delay"], time.time() - sent_at)
            probe["beats_heard"] += 1

        listener = await edge.subscribe("forge/heartbeat/+", beat)

        async def sample() -> None:  # the loop's own lag and the transport's inbox, every 20 ms
            while True:
                due = time.perf_counter() + 0.02
                await asyncio.sleep(0.02)
                probe["lag"] = max(probe["lag"], time.perf_counter() - due)
                probe["inbox"] = max(probe["inbox"], int(edge.health().stats.get("inbox", 0)))

        sampler = asyncio.create_task(sample())
        sent = mp.Value("q", 0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        flooder = mp.Process(target=_flood, args=(port, rate, seconds, sources, sent))
        flooder.start()
        while flooder.is_alive():
            await asyncio.sleep(0.1)
        deadline = time.monotonic() + 30
        while runtime.dead_letters.total < sent.value and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await asyncio.sleep(2.0)
        sampler.cancel()
        await listener.cancel()
        monitor = runtime.supervisors["monitor"].instance
        changes = [(c.source, str(c.new)) for c in monitor.changes]  # type: ignore[union-attr]
        starved = monitor.health().get("monitor_starved", {})  # type: ignore[union-attr]
        behind = monitor.health().get("transport_backlog", {})  # type: ignore[union-attr]
        summary = await runtime.stop()
        a = summary.extra["dead_letters"]
        return {"rate": rate, "sent": sent.value, "letters": a["total"], "recorded": a.get("recorded", 0),
                "dropped": a.get("dropped", 0), "quarantined": a["quarantined"], "pending": a.get("pending", 0),
                "down": [s for s, status in changes if status == "DOWN"],
                "why_down": sorted({c.reason.split(",")[-1].strip() for c in monitor.changes  # type: ignore[union-attr]
                                    if str(c.new) == "DOWN"}),
                "degraded": [s for s, status in changes if status == "DEGRADED"],
                "starved_evaluations": starved.get("starved_evaluations", 0), "max_lag": starved.get("max_lag", 0.0),
                "beats": summary.published.get("forge.heartbeat", 0), "cpu_us": 1e6 * cpu / max(1, sent.value),
                "cpu_share": cpu / wall, "loop_lag": probe["lag"], "behind": behind.get("max_age", 0.0),
                "inbox": probe["inbox"], "beat_delay": probe["beat_delay"]}

    result = asyncio.run(main())
    accounted = result["recorded"] + result["dropped"] + result["quarantined"]
    result["accounted"] = accounted == result["letters"] and result["pending"] == 0
    result["passed"] = not result["down"] and result["letters"] == result["sent"] and result["accounted"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="500,1000,2000,3000,4000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite",
                        help="where dead letters are recorded (postgres: a throwaway PostgresServer, as the "
                             "distributed profile records them)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = MosquittoServer(base_dir=Path(tmp))
        server.start()
        postgres = PostgresServer() if args.store == "postgres" else None  # its own dir: initdb runs as postgres
        try:
            store = SQLITE
            if postgres is not None:
                postgres.start()
                store = postgres.url
            raw = raw_limit(server.port)
            print(f"raw limit (paho -> Mosquitto -> paho, same bytes): {raw:,.0f} msg/s")
            best = 0
            for rate in [int(r) for r in args.rates.split(",")]:
                r = run_rate(server.port, rate, args.seconds, args.sources, store)
                print(f"{rate:>6}/s: sent {r['sent']}, letters {r['letters']} = recorded {r['recorded']} + dropped "
                      f"{r['dropped']} + quarantined {r['quarantined']} (pending {r['pending']}); DOWN {r['down']}, "
                      f"DEGRADED {r['degraded']}; monitor starved {r['starved_evaluations']}x (max lag "
                      f"{r['max_lag']}s), saw its transport behind by up to {r['behind']}s; beats {r['beats']}; "
                      f"loop lag max {r['loop_lag']:.3f}s, "
                      f"inbox max {r['inbox']}, beat delay max {r['beat_delay']:.3f}s; plant CPU {r['cpu_us']:.0f} "
                      f"us/letter ({r['cpu_share']:.0%} of a core) -> {'PASS' if r['passed'] else 'FAIL'}"
                      + (f" (DOWN: {'; '.join(r['why_down'])})" if r["down"] else ""), flush=True)
                if not r["passed"]:
                    break
                best = rate
            print(f"highest rate absorbed: {best:,}/s malformed at the MQTT edge ({args.sources} sources, "
                  f"{args.seconds:g}s each, dead letters in {args.store}); raw limit {raw:,.0f} msg/s; "
                  f"Forge/raw = {best / raw:.2f}")
        finally:
            if postgres is not None:
                postgres.stop()
            server.stop()


if __name__ == "__main__":
    main()
