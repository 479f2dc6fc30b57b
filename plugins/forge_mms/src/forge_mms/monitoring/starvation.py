"""A starved monitor holds its silence verdicts (issue 11 §3), as core's ``forge.heartbeat_monitor`` does.

Two signals, the same as core's monitor uses:

* **its own lag**: the check is due ``check_every`` s after the previous one ended; when it runs
  later than ``fraction x window`` (``window`` = the earliest silence verdict, degraded_after x
  interval), the event loop was too busy to hear the beats: no silence verdict now, nor until a
  window (plus the lag) of on-time checks has passed, so the beats that queued behind the stall are
  heard first. Logged once per episode and counted (``monitor_starved`` in health).
* **the transport's backlog**: ``Transport.backlog_age()`` (public) of the transport the beats come
  through; a beat is taken as heard when the transport read it (``now - backlog_age``), and silence
  is judged at that time too (``transport_backlog`` in health).

The rule is core's (``forge_core.builtin.heartbeat.HeartbeatMonitor.evaluate``), whose code is not
part of the public API; this module repeats it over public pieces only. It should become one core
tactic both monitors use (asked of the lead: see docs/plugins/mms.md, "Starved monitor").
"""

from __future__ import annotations

import logging
from typing import Any

from forge_core import ForgeError
from forge_core.transport import Transport

__all__ = ["StarvationGuard"]


class StarvationGuard:
    #: verdicts wait while a check ran later than this fraction of the verdict window (core's value)
    fraction = 0.5

    def __init__(self, *, window: float, every: float, name: str, log: logging.Logger | Any,
                 transport: Transport | None) -> None:
        self.every = every
        self.window = window
        self.name = name
        self.log = log
        self.transport = transport
        self._due: float | None = None
        self.starvation: dict[str, Any] = {"starved": False, "lag": 0.0, "max_lag": 0.0,
                                           "threshold": self.fraction * window, "starved_evaluations": 0,
                                           "verdicts_held_until": None}
        self.backlog: dict[str, Any] = {"age": 0.0, "max_age": 0.0, "behind": False, "behind_evaluations": 0}

    @classmethod
    def for_component(cls, ctx: Any, *, window: float, every: float) -> StarvationGuard:
        """The guard of a component whose beats come through its own transport (``ctx.transport``)."""
        try:
            transport: Transport | None = ctx.bus.transport(ctx.transport)
        except ForgeError:
            transport = None
        return cls(window=window, every=every, name=ctx.name, log=ctx.log, transport=transport)

    def backlog_age(self) -> float:
        """How long the oldest beat read but not delivered by the transport has waited (0 without one)."""
        return self.transport.backlog_age() if self.transport is not None else 0.0

    def verdicts_allowed(self, now_mono: float) -> bool:
        """Whether the check starting at ``now_mono`` may judge silence (see the module docstring)."""
        s = self.starvation
        lag = max(0.0, now_mono - self._due) if self._due is not None else 0.0
        if lag == 0.0 and not s["starved"] and s["verdicts_held_until"] is None:
            s["lag"] = 0.0  # on time, as before: nothing else to update (every check of a virtual clock)
            return True
        s["lag"] = round(lag, 3)
        s["max_lag"] = max(s["max_lag"], round(lag, 3))
        if lag > s["threshold"]:
            if not s["starved"]:
                self.log.warning("monitor %s starved: check ran %.3f s late (threshold %.3f s); no DOWN verdict for "
                                 "silence until the loop keeps up", self.name, lag, s["threshold"])
            s["starved"] = True
            s["starved_evaluations"] += 1
            s["verdicts_held_until"] = now_mono + self.window + lag
            return False
        if s["verdicts_held_until"] is not None and now_mono < s["verdicts_held_until"]:
            return False  # on time again, but the beats that queued behind the stall get a window to count
        if s["starved"]:
            self.log.warning("monitor %s keeps up again (lag %.3f s); silence verdicts resume", self.name, lag)
        s["starved"] = False
        s["verdicts_held_until"] = None
        return True

    def judged_at(self, now: float) -> float:
        """The time up to which every beat has been heard: ``now - backlog_age``, logged when behind."""
        age = self.backlog_age()
        b = self.backlog
        if age == 0.0 and not b["behind"]:
            b["age"] = 0.0
            return now
        b["age"] = round(age, 3)
        b["max_age"] = max(b["max_age"], round(age, 3))
        if age > self.starvation["threshold"]:
            if not b["behind"]:
                self.log.warning("monitor %s: its transport delivers %.3f s behind; silence is judged at the time it "
                                 "has delivered up to", self.name, age)
            b["behind"] = True
            b["behind_evaluations"] += 1
        elif b["behind"]:
            b["behind"] = False
            self.log.warning("monitor %s: its transport delivers on time again (%.3f s behind)", self.name, age)
        return now - age

    def checked(self, now_mono: float) -> None:
        """The check ended at ``now_mono``: the next is due ``every`` s later (``ctx.every`` sleeps after a call)."""
        self._due = now_mono + self.every

    def expect(self, due_mono: float) -> None:
        """The next check is due at ``due_mono`` (a timer that sleeps to an instant, not a fixed period)."""
        self._due = due_mono

    def health(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.starvation["starved_evaluations"]:
            extra["monitor_starved"] = dict(self.starvation)
        if self.backlog["max_age"]:
            extra["transport_backlog"] = dict(self.backlog)
        return extra
