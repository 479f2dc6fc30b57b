"""fetch.wait.max.ms: latency at a control loop's rate against what idle consumers cost the broker.

On one Apache Kafka broker (KRaft, the broker the tests use; started here), for each value of
``fetch.wait.max.ms`` (``--waits``, default 500 = librdkafka's default, 100, 50, 10):

(a) p50/p99 from the publish call to the handler at ``--rate`` msg/s (1,000) for ``--seconds``, raw
    confluent-kafka and Forge (``fetch_wait_max_ms``), as ``bench_kafka.py`` measures them;
(b) the price: ``--idle`` consumers (each a group member, as each Forge subscription is) on topics
    with no traffic for ``--idle-seconds``: the fetch requests they sent (librdkafka's statistics,
    ``brokers.*.req.Fetch``) and the broker JVM's CPU seconds over that time (/proc/<pid>/stat),
    beside the same broker's CPU with no consumer at all.

Prints one line per value and the load average.

    python benchmarks/bench_kafka_fetch_wait.py [--waits 500,100,50,10] [--rate 1000] [--seconds 10]
                                                [--idle 20] [--idle-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
import uuid
from typing import Any

import orjson

# the latency runs and group timings of the throughput benchmark beside this file
from bench_kafka import GROUP, forge_latency, percentiles, raw_latency
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from forge_kafka.testing import KafkaCluster

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def idle_cost(bootstrap: str, pid: int, consumers: int, seconds: float, wait_ms: int | None) -> tuple[float, int]:
    """(broker CPU seconds per second, fetch requests per second) with ``consumers`` idle consumers
    (none when ``wait_ms`` is None)."""
    fetches: dict[int, int] = {}
    clients: list[Consumer] = []
    stop = threading.Event()
    if wait_ms is not None:
        topics = [f"idle.{uuid.uuid4().hex[:8]}" for _ in range(consumers)]
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept until the topics exist
        for future in admin.create_topics([NewTopic(topic, 1, 1) for topic in topics]).values():
            future.result(30)  # an existing, assigned partition: a consumer of a missing topic never fetches
        for i, topic in enumerate(topics):

            def stats(text: str, i: int = i) -> None:
                brokers = orjson.loads(text).get("brokers", {}).values()
                fetches[i] = sum(b.get("req", {}).get("Fetch", 0) for b in brokers)

            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest",
                                 "fetch.wait.max.ms": wait_ms, "statistics.interval.ms": 500, "stats_cb": stats,
                                 **GROUP})
            consumer.subscribe([topic])
            clients.append(consumer)

    def poll_all() -> None:
        while not stop.is_set():
            for consumer in clients:
                consumer.poll(0.01)
            if not clients:
                time.sleep(0.1)

    thread = threading.Thread(target=poll_all, daemon=True)
    thread.start()
    time.sleep(5)  # joined, assigned, fetching
    before_cpu, before_fetch = process_cpu(pid), sum(fetches.values())
    time.sleep(seconds)
    after_cpu, after_fetch = process_cpu(pid), sum(fetches.values())
    stop.set()
    thread.join()
    for consumer in clients:
        consumer.close()
    return (after_cpu - before_cpu) / seconds, round((after_fetch - before_fetch) / seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", default="500,100,50,10", help="fetch.wait.max.ms values, comma-separated")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--idle", type=int, default=20, help="idle consumers for the broker's cost")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    waits = [int(w) for w in args.waits.split(",")]
    load_before = os.getloadavg()
    rows: list[tuple[Any, ...]] = []
    with KafkaCluster(1) as cluster:
        bootstrap = cluster.bootstrap
        pid = cluster.brokers[0].pid
        assert pid is not None
        baseline, _ = idle_cost(bootstrap, pid, 0, args.idle_seconds, None)
        for wait in waits:
            raw = percentiles(raw_latency(bootstrap, args.rate, args.seconds, wait))
            forge = percentiles(asyncio.run(forge_latency(bootstrap, args.rate, args.seconds, wait)))
            cpu, fetches = idle_cost(bootstrap, pid, args.idle, args.idle_seconds, wait)
            rows.append((wait, raw, forge, cpu, fetches))
            print(f"  fetch.wait.max.ms {wait}: raw p99 {raw[1]:.1f} ms, Forge p99 {forge[1]:.1f} ms, "
                  f"{args.idle} idle consumers: broker {cpu:.3f} CPU s/s, {fetches} fetches/s", flush=True)
    load_after = os.getloadavg()
    print(f"\nApache Kafka (1 KRaft node); {args.rate:,} msg/s for {args.seconds:g} s per latency run; "
          f"{os.cpu_count()} cores; load average before {load_before[0]:.2f}/{load_before[1]:.2f}/"
          f"{load_before[2]:.2f}, after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} (shared machine)")
    print(f"broker CPU with no consumer: {baseline:.3f} s/s")
    print(f"{'fetch.wait.max.ms':>17}  {'raw p50':>8} {'raw p99':>8}  {'Forge p50':>9} {'Forge p99':>9}  "
          f"{'idle: broker CPU s/s':>20} {'fetches/s':>9}  ({args.idle} idle consumers)")
    for wait, raw, forge, cpu, fetches in rows:
        print(f"{wait:>17}  {raw[0]:>8.1f} {raw[1]:>8.1f}  {forge[0]:>9.1f} {forge[1]:>9.1f}  "
              f"{cpu:>20.3f} {fetches:>9}")


if __name__ == "__main__":
    main()
