"""Simulated machines: states, fault codes and part counters as a function of time and a seed.

A machine runs for an exponentially distributed time, then stops (idle, down with a fault code,
or setup, drawn by weight), stays stopped for that state's own exponential time and runs again.
While running it finishes a part every cycle (ideal cycle time x (1 + U(0, speed_loss))); a
part is bad with probability scrap_rate. A stop abandons the part in progress.

Pure and event-driven: :meth:`PlcModel.advance` replays every transition and part up to the time
it is given, however coarse the ticks, so the same seed and the same end time give the same
counters and the same time in each state (the ground truth an OEE computation is checked
against). No I/O, no clock of its own: it runs under virtual time too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from forge_opcua.settings import MachineTiming

__all__ = ["STATES", "Machine", "MachineTotals", "PlcModel"]

#: Machine states, as the State variable spells them, and their StateCode.
STATES = {"idle": 0, "running": 1, "down": 2, "setup": 3}


@dataclass
class MachineTotals:
    """Ground truth of one machine since the model started."""

    good: int = 0
    total: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATES, 0.0))
    stops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("idle", "down", "setup"), 0))


class Machine:
    """One machine's state machine; see the module docstring."""

    def __init__(self, machine_id: str, timing: MachineTiming, ideal_cycle_time: float, rng: random.Random,
                 start: float) -> None:
        self.id = machine_id
        self.timing = timing
        self.ideal_cycle_time = ideal_cycle_time
        self.rng = rng
        self.state = "running"
        self.fault_code = 0
        self.totals = MachineTotals()
        self.now = start
        self.state_since = start
        self.last_part_at = start
        self.state_until = start + rng.expovariate(1.0 / timing.mean_running)
        self.part_due: float | None = start + self._cycle()

    @property
    def good(self) -> int:
        return self.totals.good

    @property
    def total(self) -> int:
        return self.totals.total

    def _cycle(self) -> float:
        return self.ideal_cycle_time * (1.0 + self.rng.uniform(0.0, self.timing.speed_loss))

    def advance(self, until: float) -> bool:
        """Replay every part and transition up to ``until``; True if anything a client sees changed."""
        changed = False
        while True:
            next_part = self.part_due if self.part_due is not None and self.part_due <= self.state_until else None
            when = next_part if next_part is not None else self.state_until
            if when > until:
                break
            self.totals.seconds[self.state] += when - self.now
            self.now = when
            if next_part is not None:
                self.totals.total += 1
                self.last_part_at = when
                if self.rng.random() >= self.timing.scrap_rate:
                    self.totals.good += 1
                self.part_due = when + self._cycle()
            else:
                self._transition(when)
            changed = True
        if until > self.now:
            self.totals.seconds[self.state] += until - self.now
            self.now = until
        return changed

    def _transition(self, when: float) -> None:
        timing = self.timing
        if self.state == "running":
            stops = list(timing.stop_weights)
            self.state = self.rng.choices(stops, weights=[timing.stop_weights[s] for s in stops])[0]
            self.totals.stops[self.state] += 1
            self.fault_code = self.rng.choice(timing.fault_codes) if self.state == "down" else 0
            mean = {"idle": timing.mean_idle, "down": timing.mean_down, "setup": timing.mean_setup}[self.state]
            self.part_due = None  # the part in progress is abandoned
        else:
            self.state, self.fault_code, mean = "running", 0, timing.mean_running
            self.part_due = when + self._cycle()
        self.state_since = when
        self.state_until = when + self.rng.expovariate(1.0 / mean)


class PlcModel:
    """The machines of one simulated PLC, each with its own random stream derived from ``rng``."""

    def __init__(self, machine_ids: list[str], timing: MachineTiming, rng: random.Random, start: float, *,
                 cycle_times: dict[str, float] | None = None) -> None:
        cycle_times = cycle_times or {}
        self.machines = {
            machine_id: Machine(machine_id, timing, cycle_times.get(machine_id, timing.ideal_cycle_time),
                                random.Random(rng.getrandbits(64)), start)
            for machine_id in machine_ids}

    def advance(self, until: float) -> list[Machine]:
        """Advance every machine to ``until``; returns those whose visible values changed."""
        return [machine for machine in self.machines.values() if machine.advance(until)]

    def totals(self) -> dict[str, dict[str, object]]:
        """Per machine: counters, seconds in each state, stops by kind (JSON-able; the run report)."""
        return {machine_id: {"good": m.totals.good, "total": m.totals.total,
                             "ideal_cycle_time": m.ideal_cycle_time,
                             "seconds": {state: round(s, 3) for state, s in m.totals.seconds.items()},
                             "stops": dict(m.totals.stops), "state": m.state, "fault_code": m.fault_code}
                for machine_id, m in self.machines.items()}
