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

from typing import Any

from pasta_plant.testing import derive
from sim_day import day_main  # benchmarks/ is on sys.path when run as a script

#: (interval s, how many) of the plant's periodic wake-ups: machine beats (3), scheduler safety tick,
#: health check and persist (2 replicas each), the leader's lease renewal, the follower's campaign,
#: the storage monitor. (Assignment, chaos measurement and the live view are event-driven.)
TIMERS = [(5.0, 3), (5.0, 2), (5.0, 2), (5.0, 2), (3.0, 1), (1.0, 1), (10.0, 1)]
TARGET = 10.0  # seconds of wall time for 24 simulated hours (issue 17)


def details(summary: Any) -> list[str]:
    chaos = summary.reports.get("chaos") or {}
    if "machine_kills" not in chaos:  # --no-chaos
        return []
    return [f"chaos: {chaos.get('machine_kills')} machine kills, {chaos.get('scheduler_kills')} scheduler kills "
            f"({chaos.get('leader_kills')} leaders); rebalance {chaos.get('rebalance')}; "
            f"failover {chaos.get('failover')}"]


if __name__ == "__main__":
    day_main(__doc__ or "", example="pasta_plant", derive=derive, name="pasta", timers=TIMERS, details=details,
             target=TARGET)
