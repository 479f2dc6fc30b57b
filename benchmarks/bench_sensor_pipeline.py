"""Sensor readings through producer → three-broker Apache Kafka → processor group → PostgreSQL.

Issue 14's pipeline, measured on one machine in one run, on one three-broker KRaft cluster
(``forge_kafka.cluster.KafkaCluster(3)``, RF 3, min.insync 2) and one PostgreSQL:

(a) Forge: ``forge run`` of a plant whose only component is forge-mms's ``mms.sensor_processor``
    (replicas 1, 2, 3; a process each: ``runtime.processes: per_component``) with the sensor plant's
    rules (examples/sensor_monitoring/plant.yaml), in consumer group ``<topic>``: per batch the Kafka
    transport hands over CloudEvents records (decoded, validated against mms.sensor_reading), the
    processor judges them by the rules, writes readings + sensors + alerts + rollups in one transaction
    (INSERT ... ON CONFLICT), publishes alerts; offsets are stored after the handler returned and
    auto-committed (1 s).
(b) raw confluent-kafka doing the same work per message, the best its side can do: one process per
    consumer, ``consume(num_messages=500)``, ``orjson`` decode of the same structured records, the same
    rule evaluation (forge_mms.anomaly's RuleBook, pure code), the same rows written in one transaction
    per batch with psycopg 3 (readings, sensors and rollups each by binary COPY into a temp table then one
    INSERT ... SELECT ... ON CONFLICT, the readings' DO NOTHING RETURNING, as Forge does: sensor_raw_copy.py;
    the few alerts by executemany), alerts produced to
    Kafka, then ``store_offsets`` + auto-commit (at least once, as Forge).

Each round: a fresh topic (3 partitions) and group, empty tables, the consumers started and joined
(group Stable with every member assigned) before the clock starts; then ``--readings`` readings of 30
sensors (10 per kind, values around the plant's normal levels: no anomaly) are produced as fast as an
idempotent acks=all producer goes (pre-encoded, the same bytes for both sides); the clock stops at the
last reading's ``stored_at``. Sides and processor counts are interleaved over ``--rounds``; medians. On a
shared 2-core machine the rates move with the load, so each round also reports the CPU the consumer
processes (and PostgreSQL's backends) spent per reading, which moves much less.

Then the broker-failure recovery of each side with 3 consumers: readings at a steady rate, the broker
leading most partitions (the group's coordinator on a tie) SIGKILLed; recovery = for the slowest
partition, the first reading produced after the kill being stored (the drills' definition).

    .venv/bin/python benchmarks/bench_sensor_pipeline.py [--readings 30000] [--rounds 2] [--failovers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import yaml
from bench_sensor_raw import KINDS, plant_rules, raw_worker  # benchmarks/ is on sys.path


# -- the runner ---------------------------------------------------------------------------------
def readings(count: int, sensors: int = 30) -> list[tuple[str, bytes]]:
    """(key, structured CloudEvents record) of ``count`` readings of ``sensors`` sensors, as the plant's sensors
    publish them."""
    from forge_core import Envelope
    from forge_core.transport import encode_structured

    rng = random.Random(14)
    base = time.time() - count
    ids = [(f"{prefix}-b{i}", kind, unit, mean, noise) for kind, (prefix, unit, mean, noise) in KINDS.items()
           for i in range(1, sensors // len(KINDS) + 1)]
    out = []
    for n in range(count):
        sid, kind, unit, mean, noise = ids[n % len(ids)]
        seq = n // len(ids) + 1
        ts = base + seq
        body = {"sensor_id": sid, "kind": kind, "location": "bench", "seq": seq,
                "value": round(rng.gauss(mean, noise), 2), "unit": unit,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"}
        envelope = Envelope(type="mms.sensor_reading", payload=body, source=sid, id=str(uuid.uuid4()), time=ts,
                            key=sid, topic="")
        out.append((sid, encode_structured(envelope)))
    return out


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds (user + system) used so far by ``roots`` and every process below them."""
    parent, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def below(pid: int) -> bool:
        while pid > 1:
            if pid in roots:
                return True
            pid = parent.get(pid, 0)
        return False

    return sum(t for pid, t in cpu.items() if below(pid))


class Bench:
    def __init__(self, work: Path) -> None:
        from forge_kafka.cluster import KafkaCluster

        from forge_core.testing import PostgresServer

        self.work = work
        self.pg = PostgresServer().start()
        self.url = self.pg.create_database("bench_sensors")
        self.dsn = self.pg.dsn("bench_sensors")
        self.kafka = KafkaCluster(3, base_dir=work / "kafka").start()
        self.env = {**os.environ, "KAFKA_BOOTSTRAP": self.kafka.bootstrap, "FORGE_DATABASE_URL": self.url}
        self.plant = work / "plant"
        self.plant.mkdir(exist_ok=True)
        self.write_plant("bench-warmup", 1)
        subprocess.run([sys.executable, "-m", "forge_core.cli", "db", "upgrade", str(self.plant)], env=self.env,
                       check=True, capture_output=True)

    def write_plant(self, topic: str, processors: int) -> None:
        manifest = {
            "version": 1, "plant": {"name": "bench_sensors"}, "plugins": ["mms", "kafka"],
            "transports": {"kafka": {"type": "kafka", "settings": {
                "bootstrap": "${env:KAFKA_BOOTSTRAP}", "group_template": "{group}", "session_timeout_ms": 6000,
                "heartbeat_interval_ms": 1000, "metadata_refresh_ms": 2000, "default_replication": 3,
                "producer": {"enable.idempotence": True, "acks": "all"}}}},
            "default_transport": "kafka",
            "components": {"processors": {"type": "mms.sensor_processor", "replicas": processors, "params": {
                "topic": topic, "group": topic, "alert_topic": "bench-alerts", "rules": plant_rules()}}},
            "storage": {"url": "${env:FORGE_DATABASE_URL}"},
            "runtime": {"processes": "per_component", "health": {"port": False}}}
        (self.plant / "plant.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))

    def topic(self, name: str) -> None:
        from confluent_kafka.admin import NewTopic

        admin = self.kafka.admin()  # held until the futures are done: a dropped client cancels them
        for future in admin.create_topics([NewTopic(name, 3, 3, config={"min.insync.replicas": "2"})]).values():
            future.result()

    def empty(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            conn.execute("TRUNCATE readings, sensors, alerts, reading_rollups, system_events")

    def start(self, side: str, topic: str, n: int) -> list[subprocess.Popen[bytes]]:
        log = open(self.work / f"{topic}.log", "wb")  # noqa: SIM115 - closed with the processes
        if side == "forge":
            self.write_plant(topic, n)
            return [subprocess.Popen([sys.executable, "-m", "forge_core.cli", "run", str(self.plant), "--json"],
                                     env=self.env, stdout=log, stderr=log)]
        return [subprocess.Popen([sys.executable, __file__, "raw-worker", self.kafka.bootstrap, topic, self.dsn,
                                  f"raw-{i}"], env=self.env, stdout=log, stderr=log) for i in range(n)]

    def joined(self, topic: str, n: int, timeout: float = 120.0) -> None:
        admin = self.kafka.admin()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                group = admin.describe_consumer_groups([topic], request_timeout=5)[topic].result()
                members = group.members or []
                if str(group.state).endswith("STABLE") and len(members) == n and all(
                        m.assignment and m.assignment.topic_partitions for m in members):
                    return
            except Exception:  # the group does not exist yet
                pass
            time.sleep(0.2)
        raise RuntimeError(f"group {topic}: {n} members not stable after {timeout:.0f}s; logs in {self.work}")

    def stop(self, procs: list[subprocess.Popen[bytes]]) -> None:
        """SIGINT to ``forge run`` (as Ctrl-C), SIGTERM to raw workers."""
        for p in procs:
            p.send_signal(signal.SIGTERM if "raw-worker" in p.args else signal.SIGINT)  # type: ignore[operator]
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stored(self, sql: str = "SELECT count(*), max(stored_at) FROM readings") -> tuple[int, float | None]:
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            count, last = conn.execute(sql).fetchone()  # type: ignore[misc]
        return int(count), last

    def produce(self, topic: str, records: list[tuple[str, bytes]]) -> float:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.kafka.bootstrap, "enable.idempotence": True, "acks": "all",
                             "linger.ms": 5, "queue.buffering.max.messages": 1_000_000})
        began = time.time()
        headers = [("content-type", "application/cloudevents+json; charset=utf-8")]
        for key, value in records:
            producer.produce(topic, value, key=key, headers=headers)
        producer.flush(60)
        return began

    def round(self, side: str, n: int, tag: str, records: list[tuple[str, bytes]]) -> tuple[float, float, float]:
        """(readings/s, CPU µs per reading of the consumer processes, of PostgreSQL's) of one round."""
        topic = f"bench-{side}-{n}-{tag}"
        self.topic(topic)
        self.empty()
        procs = self.start(side, topic, n)
        try:
            self.joined(topic, n)
            mine, pg = [p.pid for p in procs], [self.pg.proc.pid]
            cpu0 = (tree_cpu(mine), tree_cpu(pg))
            began = self.produce(topic, records)
            deadline = time.monotonic() + 300
            while (found := self.stored())[0] < len(records):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{side} x{n}: {found[0]} of {len(records)} stored after 300s")
                time.sleep(0.2)
            cpu1 = (tree_cpu(mine), tree_cpu(pg))
            assert found[1] is not None
            per = [1e6 * (cpu1[i] - cpu0[i]) / len(records) for i in (0, 1)]
            return len(records) / (found[1] - began), per[0], per[1]
        finally:
            self.stop(procs)

    def close(self) -> None:
        self.kafka.close()
        self.pg.close()


def failover(bench: Bench, side: str, tag: str, rate: float = 300.0, seconds: float = 25.0,
             kill_at: float = 8.0) -> dict[str, Any]:
    """Recovery after a SIGKILL of the broker leading most partitions (the coordinator on a tie), 3 consumers."""
    from collections import Counter

    import psycopg
    from confluent_kafka import Producer

    topic = f"bench-failover-{tag}"
    bench.topic(topic)
    bench.empty()
    records = readings(int(rate * seconds))
    procs = bench.start(side, topic, 3)
    produced: dict[tuple[str, int], tuple[float, int]] = {}  # (sensor, seq) -> (produced at, partition)
    killed, broker = 0.0, -1
    try:
        bench.joined(topic, 3)
        admin = bench.kafka.admin()
        coordinator = admin.describe_consumer_groups([topic])[topic].result().coordinator.id
        led = Counter(bench.kafka.leader_of(topic, p) for p in range(3))
        top = max(led.values())
        broker = coordinator if led.get(coordinator) == top else led.most_common(1)[0][0]
        producer = Producer({"bootstrap.servers": bench.kafka.bootstrap, "enable.idempotence": True, "acks": "all",
                             "linger.ms": 5})
        headers = [("content-type", "application/cloudevents+json; charset=utf-8")]
        began = time.time()
        for i, (key, value) in enumerate(records):
            while time.time() < began + i / rate:
                producer.poll(0.001)
            if not killed and time.time() >= began + kill_at:
                bench.kafka.kill(broker)
                killed = time.time()
            body = orjson.loads(value)["data"]
            at = time.time()
            producer.produce(topic, value, key=key, headers=headers, on_delivery=lambda err, msg, k=(
                body["sensor_id"], body["seq"]), at=at: err is None and produced.__setitem__(k, (at, msg.partition())))
        producer.flush(120)
        deadline = time.monotonic() + 120
        while bench.stored()[0] < len(produced) and time.monotonic() < deadline:
            time.sleep(0.5)
        with psycopg.connect(bench.dsn) as conn:
            stored = {(sid, seq): at for sid, seq, at in conn.execute("SELECT sensor_id, seq, stored_at FROM readings")}
    finally:
        bench.stop(procs)
        if broker >= 0:
            bench.kafka.brokers[broker].start()
            bench.kafka.wait_ready(timeout=180)
    first: dict[int, float] = {}
    for key, (at, partition) in produced.items():
        if at >= killed and key in stored:
            first[partition] = min(first.get(partition, float("inf")), stored[key])
    per = {p: round(t - killed, 2) for p, t in sorted(first.items())}
    return {"killed broker": broker, "was coordinator": broker == coordinator, "recovery s": max(per.values()),
            "per partition": per, "produced": len(produced), "lost": len(set(produced) - set(stored))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--processors", default="1,2,3")
    parser.add_argument("--failovers", type=int, default=1, help="broker-failure recoveries per side (0: none)")
    args = parser.parse_args()
    counts = [int(n) for n in args.processors.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-sensors-"))
    records = readings(args.readings)
    bench = Bench(work)
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    try:
        for r in range(args.rounds):
            for n in counts:
                for side in (("forge", "raw") if r % 2 == 0 else ("raw", "forge")):
                    found = bench.round(side, n, str(r), records)
                    results.setdefault((side, n), []).append(found)
                    print(f"  round {r}: {side:5} x{n}: {found[0]:8,.0f} readings/s, CPU {found[1]:5.0f} µs/reading "
                          f"(PostgreSQL {found[2]:4.0f}), load {os.getloadavg()[0]:.1f}", flush=True)

        def median(side: str, n: int, i: int) -> float:
            return statistics.median(x[i] for x in results[(side, n)])

        print(f"\nproducer -> 3 brokers -> group -> PostgreSQL ({args.readings:,} readings, 30 sensors, median of "
              f"{args.rounds}; load {os.getloadavg()[0]:.1f}); CPU = the consumer processes' own, µs per reading:")
        print(f"  {'processors':>10}  {'Forge /s':>9}  {'raw /s':>9}  {'ratio':>6}  {'Forge CPU':>9}  {'raw CPU':>8}  "
              f"{'CPU ratio':>9}  {'PG CPU F/raw':>12}  {'scaling F':>9}  {'scaling raw':>11}")
        for n in counts:
            f, raw = median("forge", n, 0), median("raw", n, 0)
            fc, rc = median("forge", n, 1), median("raw", n, 1)
            fp, rp = median("forge", n, 2), median("raw", n, 2)
            print(f"  {n:>10}  {f:9,.0f}  {raw:9,.0f}  {f / raw:6.2f}  {fc:9.0f}  {rc:8.0f}  {fc / rc:9.2f}  "
                  f"{fp:5.0f}/{rp:<6.0f}  {f / median('forge', counts[0], 0):8.2f}x  "
                  f"{raw / median('raw', counts[0], 0):10.2f}x")
        recovered: dict[str, list[float]] = {"forge": [], "raw": []}
        for k in range(args.failovers):
            for side in (("forge", "raw") if k % 2 == 0 else ("raw", "forge")):
                found = failover(bench, side, f"{side}-{k}")
                recovered[side].append(found["recovery s"])
                print(f"  broker failure {k}, {side}: {json.dumps(found)}", flush=True)
        if args.failovers:
            f, raw = (statistics.median(recovered[s]) for s in ("forge", "raw"))
            print(f"  broker-failure recovery (median of {args.failovers}): Forge {f:.1f}s, raw {raw:.1f}s, "
                  f"Forge/raw {f / raw:.2f} (consumer session 6 s, broker session 3 s)")
    finally:
        bench.close()
        print(f"  logs in {work}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "raw-worker":
        raw_worker(*sys.argv[2:6])
    else:
        main()
