"""A simulated chaos day of the Industry 4.0 plant, beside its 10 s target and the bare event loop.

    python benchmarks/bench_industry40_sim.py [--hours 24] [--seed 7] [--twice]

Runs examples/industry40 (profile chaos: factories stopped, degraded and flapping, the MMS leader
and the PMS leader killed and revived, orders posted through the REST handlers) on the virtual
clock, as ``forge run examples/industry40 --simulate 24h --seed 7 --profile chaos`` does, in a copy
with a fresh SQLite database, and prints its wall and CPU time (whole run and per simulated hour)
beside the issue's target (a day in 10 s) as a ratio, the invariant checks' verdict and the trace
digest (``--twice``: a second run with the same seed must give the same digest). Also prints the
wall time of a bare virtual-clock run of the plant's periodic wake-ups doing nothing: the event
loop alone, the floor under any plant with these intervals. The machine is shared: the load
average is printed, and the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from industry40.testing import derive
from sim_day import simulate
from timer_floor import bare  # benchmarks/ is on sys.path when run as a script

TARGET = 10.0  # seconds of wall time for 24 simulated hours (issue 12)

#: (interval s, how many) of the plant's periodic wake-ups: factory beats (4), the PMS's scheduling
#: pass (2 replicas), the MMS's check (the leader every check_every 0.25 s, the shadow every
#: shadow_check_every 1 s: plant.yaml), its beat flush (2 replicas) and prune, lease renewal by
#: the two leaders and campaigns by the two followers, the clients' orders and chaos (their mean).
#: Order progress and completions, reports and relays are event-driven.
TIMERS = [(1.0, 4), (1.0, 2), (0.25, 1), (1.0, 1), (1.0, 2), (60.0, 2), (2.0, 2), (1.0, 2), (12.5, 1), (40.0, 1)]


def plant(seconds: float, seed: int) -> tuple[float, float, Any]:
    return simulate(derive, "industry40", seconds, seed, "chaos")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--twice", action="store_true", help="run again with the same seed and compare digests")
    args = parser.parse_args()
    seconds = args.hours * 3600
    load = os.getloadavg()[0]
    wall, cpu, summary = plant(seconds, args.seed)
    floor, wakeups = bare(TIMERS, seconds)
    failed = [c for c in summary.checks if not c.passed]
    target = TARGET * args.hours / 24
    print(f"simulated {args.hours:g} h of examples/industry40 (profile chaos, seed {args.seed}); "
          f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end, {os.cpu_count()} cores")
    print(f"  plant:       {wall:7.2f} s wall ({wall / args.hours:.2f} s per simulated hour), {cpu:7.2f} s CPU "
          f"({cpu / args.hours:.2f} s/h)   {summary.total_published:>8} messages")
    print(f"  checks {len(summary.checks) - len(failed)}/{len(summary.checks)} passed   "
          f"digest {summary.trace_digest[:16]}")
    print(f"  bare timers: {floor:7.2f} s wall   {wakeups:>8} wake-ups (the event loop alone)")
    print(f"  per simulated day: {wall * 24 / args.hours:.1f} s wall, {cpu * 24 / args.hours:.1f} s CPU; "
          f"plant / {target:g} s target = {wall / target:.2f} (wall), {cpu / target:.2f} (CPU);  "
          f"plant / bare timers = {wall / floor:.1f}x")
    chaos = summary.reports.get("chaos", {})
    actions = ("stop", "degraded", "flapping", "kill", "skipped")
    print("  chaos: " + ", ".join(f"{k} {chaos.get(k, 0)}" for k in actions))
    pms = [summary.reports.get(f"pms-{i}", {}) for i in range(2)]
    print(f"  orders: created {sum(r.get('created', 0) for r in pms)}, completed "
          f"{sum(r.get('completed', 0) for r in pms)}, moved {sum(r.get('moved', 0) for r in pms)}")
    for check in failed:
        print(f"  FAILED {check.component}: {check.name}: {check.detail}")
    if args.twice:
        wall2, cpu2, again = plant(seconds, args.seed)
        same = again.trace_digest == summary.trace_digest
        print(f"  second run:  {wall2:7.2f} s wall, {cpu2:7.2f} s CPU, digest {again.trace_digest[:16]} "
              f"({'same' if same else 'DIFFERENT'})")


if __name__ == "__main__":
    main()
