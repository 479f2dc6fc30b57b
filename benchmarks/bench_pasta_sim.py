"""A simulated plant day of the pasta plant with chaos, beside the raw limit.

    python benchmarks/bench_pasta_sim.py [--hours 24] [--seed 7] [--no-chaos]

Runs examples/pasta_plant (profile chaos) on the virtual clock, as
``forge run examples/pasta_plant --simulate 24h --seed 7 --profile chaos`` does, in a copy with a
fresh database, and prints its wall time beside the wall time of a bare virtual-clock run of
the same timers (every periodic wake-up of the plant's components, doing nothing): the cost of
the event loop alone, the floor under any plant with these intervals. Target (issue 17): 24 h in
10 s of wall time, printed as a ratio beside the CPU time (the steadier figure on a shared machine),
the load average and the trace digest (``--twice``: a second run must give the same digest).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from pasta_plant.testing import derive
from sim_day import simulate
from timer_floor import bare  # benchmarks/ is on sys.path when run as a script

#: (interval s, how many) of the plant's periodic wake-ups: machine beats (3), scheduler safety tick,
#: health check and persist (2 replicas each), the leader's lease renewal, the follower's campaign,
#: the storage monitor. (Assignment, chaos measurement and the live view are event-driven.)
TIMERS = [(5.0, 3), (5.0, 2), (5.0, 2), (5.0, 2), (3.0, 1), (1.0, 1), (10.0, 1)]
TARGET = 10.0  # seconds of wall time for 24 simulated hours (issue 17)


def plant(seconds: float, seed: int, profile: str | None) -> tuple[float, float, Any]:
    return simulate(derive, "pasta", seconds, seed, profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-chaos", action="store_true")
    parser.add_argument("--twice", action="store_true", help="run again with the same seed and compare digests")
    args = parser.parse_args()
    seconds = args.hours * 3600
    profile = None if args.no_chaos else "chaos"
    load = os.getloadavg()[0]
    wall, cpu, summary = plant(seconds, args.seed, profile)
    floor, wakeups = bare(TIMERS, seconds)
    failed = [c for c in summary.checks if not c.passed]
    target = TARGET * args.hours / 24
    print(f"simulated {args.hours:g} h of examples/pasta_plant (profile {profile}, seed {args.seed}); load average "
          f"{load:.1f} at start, {os.getloadavg()[0]:.1f} at end, {os.cpu_count()} cores")
    print(f"  plant:       {wall:7.2f} s wall, {cpu:7.2f} s CPU   {summary.total_published:>8} messages   "
          f"checks {len(summary.checks) - len(failed)}/{len(summary.checks)} passed   "
          f"digest {summary.trace_digest[:16]}")
    print(f"  bare timers: {floor:7.2f} s wall   {wakeups:>8} wake-ups (the event loop alone)")
    print(f"  per simulated day: {wall * 24 / args.hours:.1f} s wall, {cpu * 24 / args.hours:.1f} s CPU; "
          f"plant / {target:g} s target = {wall / target:.2f} (wall), {cpu / target:.2f} (CPU);  "
          f"plant / bare timers = {wall / floor:.1f}x")
    if profile:
        chaos = summary.reports.get("chaos", {})
        print(f"  chaos: {chaos.get('machine_kills')} machine kills, {chaos.get('scheduler_kills')} scheduler kills "
              f"({chaos.get('leader_kills')} leaders); rebalance {chaos.get('rebalance')}; "
              f"failover {chaos.get('failover')}")
    for check in failed:
        print(f"  FAILED {check.component}: {check.name}: {check.detail}")
    if args.twice:
        wall2, cpu2, again = plant(seconds, args.seed, profile)
        same = again.trace_digest == summary.trace_digest
        print(f"  second run:  {wall2:7.2f} s wall, {cpu2:7.2f} s CPU, digest {again.trace_digest[:16]} "
              f"({'same' if same else 'DIFFERENT'})")


if __name__ == "__main__":
    main()
