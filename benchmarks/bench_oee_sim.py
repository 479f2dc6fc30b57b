"""A simulated chaos day of the OEE line, beside its 10 s target and the bare event loop.

    python benchmarks/bench_oee_sim.py [--hours 24] [--seed 7] [--twice]

Runs examples/oee_line (profile chaos: the simulated PLC's three machines reported tag by tag, the real
``sparkplug.edge_node`` and ``sparkplug.host`` on the simulated broker, broker outages, PLC restarts and
edge network losses, the gateway's 10 s window, the historian storing every sample, OEE every 15 min,
the audit's checks) on the virtual clock, as ``forge run examples/oee_line --simulate 24h --seed 7
--profile chaos`` does, in a copy of the manifest with a fresh SQLite database, and prints its wall and
CPU time (whole run and per simulated hour) beside the issue's target (a day in 10 s, issue 17) as a
ratio, the checks' verdict and the trace digest (``--twice``: a second run with the same seed must give
the same digest). Also prints the wall time of a bare virtual-clock run of the plant's periodic wake-ups
doing nothing: the event loop alone, the floor under any plant with these intervals. The machine is
shared: the load average is printed, and the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import yaml
from sim_day import simulate
from timer_floor import bare  # benchmarks/ is on sys.path when run as a script

PLANT = Path(__file__).resolve().parents[1] / "examples" / "oee_line"
TARGET = 10.0  # seconds of wall time for 24 simulated hours (issue 17)

#: (interval s, how many) of the plant's periodic wake-ups with the chaos profile's settings: the host's
#: lease renewal (the chaos profile's tactics.leader renew_every 2 s), the gateway's window (10 s), the edge
#: node's link proof (a second after each window's DATA), the historian's commit, percentiles and retention
#: sweep, the OEE publication. The PLC's parts and transitions, the edge node's DATA, the broker's deliveries,
#: the host's reorder check (at a gap's deadline, since stop 33) and the chaos are event-driven.
TIMERS = [(2.0, 1), (10.0, 1), (10.0, 1), (10.0, 1), (300.0, 1), (3600.0, 1), (900.0, 1)]


def derive(tmp: Path) -> Path:
    """A copy of the plant's manifest whose chaos profile stores in ``tmp`` (a fresh database each run)."""
    doc = yaml.safe_load((PLANT / "plant.yaml").read_text())
    doc["profiles"]["chaos"]["storage"] = {"url": f"sqlite:///{tmp}/oee_sim.db", "migrate_on_start": True}
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp


def plant(seconds: float, seed: int) -> tuple[float, float, Any]:
    return simulate(derive, "oee_line", seconds, seed, "chaos")


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
    print(f"simulated {args.hours:g} h of examples/oee_line (profile chaos, seed {args.seed}); "
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
    kinds = ("broker_outage", "plc_restart", "edge_network_loss", "skipped")
    print("  chaos: " + ", ".join(f"{k} {chaos.get(k, 0)}" for k in kinds))
    audit = summary.reports.get("audit", {})
    print(f"  audit: {audit.get('samples')} samples, {audit.get('bus_messages')} host messages, "
          f"{audit.get('nbirths')} births, {audit.get('seq_gaps')} seq gaps, edge outbox at end "
          f"{audit.get('edge_outbox_at_end')}")
    for check in failed:
        print(f"  FAILED {check.component}: {check.name}: {check.detail}")
    if args.twice:
        wall2, cpu2, again = plant(seconds, args.seed)
        same = again.trace_digest == summary.trace_digest
        print(f"  second run:  {wall2:7.2f} s wall, {cpu2:7.2f} s CPU, digest {again.trace_digest[:16]} "
              f"({'same' if same else 'DIFFERENT'})")


if __name__ == "__main__":
    main()
