"""Forge on Kafka with and without structured mode's content-type header, alternated (issue 17 target 4).

The transport's default writes a structured event with no header, produced with a positional
``produce()``; ``content_type_header: true`` writes the CloudEvents Kafka binding's header (keyword
``produce()``, the header decoded on receipt). This runs ``bench_kafka.py``'s Forge rounds — batch
(``publish_batch`` of 500, a ``batch=True`` handler) and per message — both ways in alternation on
one Tansu broker (memory storage: it measures the client, not the broker) and prints each side's
rates and client CPU per message (every thread of the process: the figure a loaded machine disturbs
least), the ratios of medians and per pair, and the load average.

    python benchmarks/bench_kafka_header.py [--messages 30000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics

import bench_kafka
from forge_kafka.testing import KafkaServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    base = dict(bench_kafka.SETTINGS)
    rates: dict[tuple[str, bool], list[float]] = {(path, h): [] for path in ("batch", "one") for h in (False, True)}
    cpu: dict[tuple[str, bool], list[float]] = {key: [] for key in rates}
    load_before = os.getloadavg()
    with KafkaServer() as server:
        asyncio.run(bench_kafka.forge_round(server.bootstrap, 5000, batch=500))  # warm the broker and the client
        for _ in range(args.rounds):
            for header in (False, True):
                bench_kafka.SETTINGS.clear()
                bench_kafka.SETTINGS.update(base, content_type_header=header)
                for path, batch in (("batch", 500), ("one", 0)):
                    rate, us = asyncio.run(bench_kafka.forge_round(server.bootstrap, args.messages, batch=batch))
                    rates[(path, header)].append(rate)
                    cpu[(path, header)].append(us)
    load_after = os.getloadavg()
    print(f"Tansu (memory storage); {args.messages:,} messages x {args.rounds} rounds, alternated; {os.cpu_count()} "
          f"cores; load {load_before[0]:.2f} -> {load_after[0]:.2f} (shared machine)")
    for path, label in (("batch", "publish_batch / batch handler"), ("one", "publish / handler per message")):
        without, marked = rates[(path, False)], rates[(path, True)]
        print(f"{label}: headerless {[round(x) for x in without]} msg/s, with the header {[round(x) for x in marked]}; "
              f"median ratio {statistics.median(without) / statistics.median(marked):.2f}, per pair "
              f"{[round(a / b, 2) for a, b in zip(without, marked, strict=True)]}")
        less, more = cpu[(path, False)], cpu[(path, True)]
        print(f"  client CPU us/msg: headerless {[round(x, 1) for x in less]}, with the header "
              f"{[round(x, 1) for x in more]}; median ratio (header / headerless) "
              f"{statistics.median(more) / statistics.median(less):.2f}")


if __name__ == "__main__":
    main()
