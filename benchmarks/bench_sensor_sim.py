"""A simulated day of the sensor monitoring plant, beside its 10 s target and the bare event loop.

    python benchmarks/bench_sensor_sim.py [--hours 24] [--seed 7] [--twice]

Runs examples/sensor_monitoring (its default, embedded profile: nine sensors on the memory bus, one
mms.sensor_processor, the live view's storage poll, SQLite) on the virtual clock, as
``forge run examples/sensor_monitoring --simulate 24h --seed 7`` does, in a copy with a fresh
database. The plant has no chaos profile: what ``--simulate`` runs is its anomaly injection (the
seeded random draw, 2 an hour per sensor, and the schedule's four), judged by the processors and
checked at the end (every reading stored once, every anomaly alerted, no alert without one, alerts
cleared). Its failure drills need a Kafka cluster (``forge drill``) and are not part of a simulated run.

Prints wall and CPU time (whole run and per simulated hour) beside the issue's target (a day in 10 s)
as a ratio, the checks' verdict and the trace digest (``--twice``: a second run with the same seed
must give the same digest and checks), and the wall time of a bare virtual-clock run of the plant's
periodic wake-ups doing nothing: the event loop alone, the floor under any plant with these
intervals. The machine is shared: the load average is printed, and the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from sensor_monitoring.testing import derive
from sim_day import simulate
from timer_floor import bare  # benchmarks/ is on sys.path when run as a script

TARGET = 10.0  # seconds of wall time for 24 simulated hours (issue 17)

#: (interval s, how many) of the plant's periodic wake-ups: the nine sensors' samples (1 s; ten times
#: as often during a burst, a few minutes a day), the live view's storage poll (1 s), the processor's
#: consumer_status row (5 s). Judging and storing the readings is event-driven.
TIMERS = [(1.0, 9), (1.0, 1), (5.0, 1)]


def plant(seconds: float, seed: int) -> tuple[float, float, Any]:
    return simulate(derive, "sensor_monitoring", seconds, seed)


def verdict(summary: Any) -> list[tuple[str, bool]]:
    return [(f"{c.component}: {c.name}", c.passed) for c in summary.checks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--twice", action="store_true",
                        help="run again with the same seed and compare digests and checks")
    args = parser.parse_args()
    seconds = args.hours * 3600
    load = os.getloadavg()[0]
    wall, cpu, summary = plant(seconds, args.seed)
    floor, wakeups = bare(TIMERS, seconds)
    failed = [c for c in summary.checks if not c.passed]
    target = TARGET * args.hours / 24
    sensors = [r for name, r in summary.reports.items() if name.startswith("sensors")]
    processors = summary.reports.get("processors", {})
    print(f"simulated {args.hours:g} h of examples/sensor_monitoring (embedded profile, anomalies on, seed "
          f"{args.seed}); load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end, {os.cpu_count()} cores")
    print(f"  plant:       {wall:7.2f} s wall ({wall / args.hours:.2f} s per simulated hour), {cpu:7.2f} s CPU "
          f"({cpu / args.hours:.2f} s/h)   {summary.total_published:>8} messages")
    produced, anomalies = sum(r.get("produced", 0) for r in sensors), sum(r.get("anomalies", 0) for r in sensors)
    print(f"  readings: produced {produced}, stored {processors.get('stored')}, anomalies {anomalies}, alerts raised "
          f"{processors.get('alerts_raised')} cleared {processors.get('alerts_cleared')}, dead letters "
          f"{processors.get('malformed')}, batches {processors.get('batches')}")
    print(f"  checks {len(summary.checks) - len(failed)}/{len(summary.checks)} passed   "
          f"digest {summary.trace_digest[:16]}")
    print(f"  bare timers: {floor:7.2f} s wall   {wakeups:>8} wake-ups (the event loop alone)")
    print(f"  per simulated day: {wall * 24 / args.hours:.1f} s wall, {cpu * 24 / args.hours:.1f} s CPU; "
          f"plant / {target:g} s target = {wall / target:.2f} (wall), {cpu / target:.2f} (CPU);  "
          f"plant / bare timers = {wall / floor:.1f}x")
    for check in failed:
        print(f"  FAILED {check.component}: {check.name}: {check.detail}")
    if args.twice:
        wall2, cpu2, again = plant(seconds, args.seed)
        same = again.trace_digest == summary.trace_digest
        checks = "same checks" if verdict(again) == verdict(summary) else "DIFFERENT checks"
        print(f"  second run:  {wall2:7.2f} s wall, {cpu2:7.2f} s CPU, digest {again.trace_digest[:16]} "
              f"({'same' if same else 'DIFFERENT'}), {checks}")


if __name__ == "__main__":
    main()
