"""The invariant "HIGH-risk factories are drained before they fail, when capacity allows", followed
from the messages a plain observer sees (the chaos component feeds it; it owns the failures).

* ``mms.risk_changed``: a factory's risk by the MMS; HIGH from the message's arrival;
* ``sched.order_assigned`` / ``sched.order_revoked`` / ``sched.order_completed`` on
  ``factory/<id>/...``: what each factory holds (the PMS's own count of its load);
* ``sched.order_progress``: the order started (a factory sends progress 0 when a line takes it up;
  only not-yet-started orders are drained).

The MMS reports an UP factory at HIGH risk DEGRADED ("risk HIGH") when the PMS answers its capacity
query with free capacity on another factory UP below HIGH (forge_mms's failover manager),
and the PMS moves its not-yet-started orders where there is room, in one transaction. So a
``grace`` after the risk turned HIGH (the MMS's check and capacity query, the report, the transaction), a factory
should hold no not-yet-started order from before then while another factory has room. At each
failure (a chaos stop) of a factory HIGH for at least ``grace``, the orders it still holds, not
started and assigned before the drain was due, are a violation **if capacity allowed**: room
(capacity minus orders held) on a factory that is neither failed nor at HIGH risk, both ``grace``
after the risk turned HIGH and at the failure (room that only appeared later is not asked of the
PMS: it drains once, at the report). Risk that fell back below HIGH ends the drain.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from forge_core import Check

NAME = "HIGH-risk factories drained before they fail (capacity allowing)"


@dataclass
class Held:
    assigned_at: float
    started: bool = False


@dataclass
class DrainWatch:
    """Risk, holdings and starts per factory; ``failed(factory, now, down)`` judges one failure."""

    capacity: Callable[[str], int]
    grace: float
    risk_high_since: dict[str, float] = field(default_factory=dict)
    room_after_drain: dict[str, int] = field(default_factory=dict)  # factory -> room elsewhere `grace` after HIGH
    held: dict[str, dict[str, Held]] = field(default_factory=dict)  # factory -> order -> held
    judged: int = 0  # failures of HIGH-risk factories checked
    drained_ok: int = 0  # ... that held no not-yet-started order while room was left
    no_room: int = 0  # ... that kept orders because no other factory had room
    violations: list[str] = field(default_factory=list)

    # -- what was seen -----------------------------------------------------------------------------
    def risk(self, factory: str, risk: str, now: float) -> None:
        if risk == "HIGH":
            self.risk_high_since.setdefault(factory, now)
        else:
            self.risk_high_since.pop(factory, None)
            self.room_after_drain.pop(factory, None)

    def assigned(self, factory: str, order: str, now: float) -> None:
        for other, orders in self.held.items():  # moved: one holder at a time
            if other != factory:
                orders.pop(order, None)
        self.held.setdefault(factory, {})[order] = Held(now)

    def gone(self, factory: str, order: str) -> None:
        """Revoked from ``factory``, or completed by it."""
        self.held.get(factory, {}).pop(order, None)

    def started(self, factory: str, order: str) -> None:
        held = self.held.get(factory, {}).get(order)
        if held is not None:
            held.started = True

    # -- judging -----------------------------------------------------------------------------------
    def room(self, factory: str, down: Collection[str]) -> int:
        """Free capacity on factories other than ``factory`` that take orders (not failed, not at HIGH risk)."""
        others = (set(self.held) | set(self.risk_high_since) | set(down)) - {factory}
        return sum(max(0, self.capacity(f) - len(self.held.get(f, {}))) for f in others
                   if f not in down and f not in self.risk_high_since)

    def drain_due(self, factory: str, down: Collection[str]) -> None:
        """``grace`` after ``factory`` turned HIGH: the room the drain could use, for ``failed``."""
        if factory in self.risk_high_since:
            self.room_after_drain[factory] = self.room(factory, down)

    def failed(self, factory: str, now: float, down: Collection[str]) -> None:
        since = self.risk_high_since.get(factory)
        if since is None or now - since < self.grace or factory not in self.room_after_drain:
            return  # not HIGH, or not for long enough to have been drained
        self.judged += 1
        due = since + self.grace
        kept = sorted(o for o, h in self.held.get(factory, {}).items() if not h.started and h.assigned_at <= due)
        room = min(self.room_after_drain[factory], self.room(factory, down))
        if not kept:
            self.drained_ok += 1
        elif room == 0:
            self.no_room += 1
        else:
            self.violations.append(f"{factory} failed at {now:.1f} holding {len(kept)} not-yet-started orders "
                                   f"({', '.join(kept[:3])}) {now - since:.1f}s after its risk turned HIGH, "
                                   f"with room for {room} elsewhere")

    def check(self) -> Check:
        detail = (f"{self.judged} failures of HIGH-risk factories: {self.drained_ok} drained, "
                  f"{self.no_room} kept orders for want of room elsewhere") if not self.violations \
            else "; ".join(self.violations[:5])
        return Check(NAME, not self.violations, detail)
