"""OEE on the ISO 22400-2 time model: availability x performance x quality from times and counts.

ISO 22400-2 (KPIs for manufacturing operations management) defines, for a work unit and an
observation period:

* planned production time (PPT, "planned busy time"): the period minus planned downtime;
* run time (APT, "actual production time"): time the unit actually produced;
* availability = APT / PBT, effectiveness (performance) = PRI x PQ / APT, quality rate = GQ / PQ,
  with PRI the planned runtime per item (ideal cycle time), PQ the produced and GQ the good quantity;
* OEE index = availability x effectiveness x quality rate = PRI x GQ / PBT.

Everything here is pure arithmetic on seconds and counts, so it can be checked by hand: the
literature example (480 min planned, 420 min run, 1 min ideal cycle, 400 made, 380 good) gives
A 0.875, P 0.952, Q 0.95, OEE 0.7917.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["OeeFigures", "combine", "compute"]


@dataclass(frozen=True)
class OeeFigures:
    """Times in seconds. ``net_run_time`` = ideal cycle x total, ``productive_time`` = ideal cycle x good."""

    planned_time: float
    run_time: float
    net_run_time: float
    productive_time: float
    total: int
    good: int

    @property
    def availability(self) -> float:
        return self.run_time / self.planned_time if self.planned_time > 0 else 0.0

    @property
    def performance(self) -> float:
        # > 1 means the configured ideal cycle time is slower than the machine: a setting to fix, kept visible
        return self.net_run_time / self.run_time if self.run_time > 0 else 0.0

    @property
    def quality(self) -> float:
        # weighted by ideal cycle time, so on a line a slow machine's part weighs more; per machine it is good/total
        return self.productive_time / self.net_run_time if self.net_run_time > 0 else 0.0

    @property
    def oee(self) -> float:
        # A x P x Q telescopes to productive / planned; computed directly to avoid rounding three factors
        return self.productive_time / self.planned_time if self.planned_time > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"planned_time": self.planned_time, "run_time": self.run_time, "net_run_time": self.net_run_time,
                "productive_time": self.productive_time, "total": self.total, "good": self.good,
                "availability": self.availability, "performance": self.performance, "quality": self.quality,
                "oee": self.oee}


def compute(planned_time: float, run_time: float, ideal_cycle_time: float, total: int, good: int) -> OeeFigures:
    """One work unit's figures; ValueError naming the argument when the inputs cannot be."""
    if planned_time < 0 or run_time < 0 or ideal_cycle_time < 0:
        raise ValueError(f"OEE: times must be >= 0 (planned_time={planned_time}, run_time={run_time}, "
                         f"ideal_cycle_time={ideal_cycle_time})")
    if run_time > planned_time + 1e-9:
        raise ValueError(f"OEE: run_time {run_time} s exceeds planned_time {planned_time} s")
    if not 0 <= good <= total:
        raise ValueError(f"OEE: need 0 <= good <= total, got good={good}, total={total}")
    return OeeFigures(planned_time, run_time, ideal_cycle_time * total, ideal_cycle_time * good, total, good)


def combine(parts: Iterable[OeeFigures]) -> OeeFigures:
    """A line's (or several shifts') figures: times and counts summed.

    The line OEE is then sum(ideal x good) / sum(planned), i.e. the machines' OEE weighted by their
    planned time; availability, performance and quality are weighted the same way and still multiply
    to the OEE.
    """
    planned = run = net = productive = 0.0
    total = good = 0
    for f in parts:
        planned += f.planned_time
        run += f.run_time
        net += f.net_run_time
        productive += f.productive_time
        total += f.total
        good += f.good
    return OeeFigures(planned, run, net, productive, total, good)
