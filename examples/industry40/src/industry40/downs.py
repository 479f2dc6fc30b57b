"""Two invariants of a DOWN factory, followed over the whole run from the messages a plain observer
sees (the chaos component feeds it):

* ``factory/<id>/heartbeat``: each factory's last beat;
* ``forge.status`` (the MMS leader's verdicts): DOWN, and the next UP (or DEGRADED) ending it;
* ``mms.failover_event`` (the reports the PMS accepted): the same for the verdicts a successor MMS
  leader reached while it shadowed (it reports them at its takeover; it published no
  ``forge.status`` for them);
* ``sched.order_assigned`` / ``sched.order_revoked`` / ``sched.order_completed``: who holds what;
* ``forge.leadership`` of the PMS's lease, and chaos's own kills of its leader: when no PMS leads.

**Moved within the bound.** The MMS says DOWN at most ``max_gap`` + ``check_every`` after the last
beat (the silence rule, judged at the leader's next check at the latest); the PMS moves every
unfinished order of the factory away in the report's transaction, and any it missed in its next
``schedule_interval`` pass. So every order the factory held at the verdict (or was given after it,
before the PMS applied the DOWN) is revoked from it or completed by ``last beat + max_gap +
check_every + schedule_interval``. The origin is the DOWN verdict instead (``verdict +
schedule_interval``) where the verdict came later than the silence rule allows, which only a
failover of the MMS causes (its successor judges at its takeover), and the PMS's takeover plus the
MMS's report retry (``timeout`` + ``resend_after``) where no PMS led when the report was due (chaos
killed its leader): nobody could apply the report before then.

**Never assigned while DOWN.** Between a factory's DOWN verdict and its next UP no order is
assigned to it, except before the PMS applied the DOWN (its first move away from the factory, or the
bound): such an order has to move with the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forge_core import Check

LAST_BEATS = "industry40.last_beats"


def last_beats(ctx: Any) -> dict[str, float]:
    """The runtime's factory id -> time of its last published beat, which every factory of this process
    stamps (a dict store a beat): a watcher in the same process reads it instead of taking a delivery of
    every beat (~10 k instructions each, ~3 % of a simulated hour). A plain dict without tactics."""
    try:
        book: dict[str, float] = ctx.tactics.shared(LAST_BEATS, dict)
    except RuntimeError:
        book = ctx.services.setdefault(LAST_BEATS, {})
    return book


MOVED = "every order of a DOWN factory moved within the detection bound plus one scheduling pass"
NOT_ASSIGNED = "no order assigned to a DOWN factory"


@dataclass(frozen=True)
class Bound:
    """The settings the bound is made of (the MMS's and the PMS's, as the plant runs them)."""

    max_gap: float
    check_every: float
    schedule_interval: float
    report_retry: float  # the MMS's status report timeout + resend_after: a report lost to a dead PMS leader

    @property
    def detection(self) -> float:
        return self.max_gap + self.check_every

    @property
    def total(self) -> float:
        return self.detection + self.schedule_interval

    def text(self) -> str:
        return (
            f"last beat + max_gap {self.max_gap:g} s + check_every {self.check_every:g} s + schedule_interval "
            f"{self.schedule_interval:g} s = {self.total:g} s (from a later DOWN verdict: + schedule_interval; "
            f"from a PMS takeover: + report retry {self.report_retry:g} s + schedule_interval)"
        )


@dataclass
class Down:
    """One DOWN verdict of a factory and the orders it has to give up by ``due``."""

    factory: str
    at: float
    due: float
    origin: str  # "last beat" | "verdict" | "PMS takeover"
    since: float  # the origin's instant the elapsed times are measured from
    waiting: set[str] = field(default_factory=set)
    moved: int = 0
    applied: bool = False  # the PMS moved an order away: it holds the factory DOWN
    judged: bool = False


@dataclass
class DownWatch:
    """Beats, verdicts, holdings and PMS leadership; ``judge(factory)`` at a DOWN's ``due``."""

    bound: Bound
    last_beat: dict[str, float] = field(default_factory=dict)
    holder: dict[str, str] = field(default_factory=dict)  # order -> factory
    down: dict[str, Down] = field(default_factory=dict)  # factory -> its DOWN until the next UP/DEGRADED
    pms_leaderless_since: float | None = None
    downs: int = 0  # DOWN verdicts judged
    moved: int = 0  # orders moved (or completed) in time
    slowest: float = 0.0  # the longest from an origin to the last move of a DOWN
    late_verdicts: int = 0  # timed from the verdict (an MMS failover)
    pms_failovers: int = 0  # timed from the PMS's takeover
    assigned_while_down: int = 0  # ... before the PMS applied the DOWN: moved with the others
    violations: list[str] = field(default_factory=list)
    assigned_violations: list[str] = field(default_factory=list)

    # -- what was seen -----------------------------------------------------------------------------
    def beat(self, factory: str, now: float) -> None:
        self.last_beat[factory] = now

    def status(self, factory: str, status: str, now: float) -> Down | None:
        """A verdict of the MMS; returns the new DOWN (its ``due`` is when to call ``judge``)."""
        if status != "DOWN":
            gone = self.down.pop(factory, None)
            if gone is not None and not gone.judged and gone.waiting:
                gone.judged = True  # back before its orders were due to move: nothing left to ask of the PMS
            return None
        if factory in self.down:
            return None  # still DOWN (a successor's repeated verdict)
        last = self.last_beat.get(factory)
        if last is not None and now <= last + self.bound.detection + 1e-9:
            origin, since = "last beat", last
            due = last + self.bound.total
        else:
            origin, since = "verdict", now
            due = now + self.bound.schedule_interval
        waiting = {order for order, holder in self.holder.items() if holder == factory}
        entry = Down(factory, now, due, origin, since, waiting)
        if self.pms_leaderless_since is not None:
            entry.origin, entry.due = "PMS takeover", float("inf")  # set at the takeover
        self.down[factory] = entry
        return entry

    def reported(self, factory: str, status: str, now: float) -> Down | None:
        """The PMS accepted ``status`` for ``factory``: a DOWN not seen as a verdict starts here (a successor
        MMS leader's, judged while it shadowed), and any other status ends the DOWN as an UP verdict does."""
        if status == "DOWN":
            return None if factory in self.down else self.status(factory, status, now)
        return self.status(factory, status, now)

    def pms_lost(self, now: float) -> None:
        """No PMS leads from ``now`` (chaos killed the leader): the DOWNs still waiting wait for a successor."""
        if self.pms_leaderless_since is None:
            self.pms_leaderless_since = now
        for entry in self.down.values():
            if not entry.judged and entry.waiting and not entry.applied:
                entry.origin, entry.due = "PMS takeover", float("inf")

    def pms_elected(self, now: float) -> list[Down]:
        """A PMS replica leads again: the DOWNs that waited for it are due one report retry and pass later."""
        self.pms_leaderless_since = None
        waited = [e for e in self.down.values() if e.origin == "PMS takeover" and e.due == float("inf")]
        for entry in waited:
            entry.since = now
            entry.due = now + self.bound.report_retry + self.bound.schedule_interval
        return waited

    def assigned(self, factory: str, order: str, now: float) -> None:
        previous = self.holder.get(order)
        if previous is not None and previous != factory:
            self._left(previous, order, now)
        self.holder[order] = factory
        entry = self.down.get(factory)
        if entry is None:
            return
        if not entry.applied and now <= entry.due + 1e-9:
            self.assigned_while_down += 1
            entry.waiting.add(order)  # given before the PMS knew: it has to move with the others
        else:
            self.assigned_violations.append(
                f"{order} assigned to {factory} at {now:.3f}, DOWN since {entry.at:.3f}"
                + (" (the PMS had applied the DOWN)" if entry.applied else f" (past the bound {entry.due:.3f})")
            )

    def gone(self, factory: str, order: str, now: float) -> None:
        """Revoked from ``factory``, or completed by it."""
        if self.holder.get(order) == factory:
            del self.holder[order]
        self._left(factory, order, now)

    def _left(self, factory: str, order: str, now: float) -> None:
        entry = self.down.get(factory)
        if entry is None or entry.judged:
            return
        entry.applied = True
        if order in entry.waiting:
            entry.waiting.discard(order)
            if now <= entry.due + 1e-9:
                entry.moved += 1
                self.slowest = max(self.slowest, now - entry.since)
            else:
                self.violations.append(
                    f"{order} left DOWN {entry.factory} at {now:.3f}, {now - entry.due:.3f} s "
                    f"past its bound {entry.due:.3f} (from the {entry.origin} {entry.since:.3f})"
                )

    # -- judging -----------------------------------------------------------------------------------
    def judge(self, factory: str, at: float) -> None:
        """``due`` of the factory's DOWN has passed (``at``): what it still holds is a violation."""
        entry = self.down.get(factory)
        if entry is None or entry.judged or at < entry.due:
            return
        entry.judged = True
        self.downs += 1
        self.moved += entry.moved
        self.late_verdicts += entry.origin == "verdict"
        self.pms_failovers += entry.origin == "PMS takeover"
        if entry.waiting:
            kept = sorted(entry.waiting)
            self.violations.append(
                f"DOWN {factory} (verdict at {entry.at:.3f}) still held {len(kept)} orders "
                f"({', '.join(kept[:3])}) at its bound {entry.due:.3f} (from the {entry.origin} "
                f"{entry.since:.3f})"
            )

    def checks(self) -> list[Check]:
        open_ = sum(1 for e in self.down.values() if not e.judged and e.waiting)
        detail = (
            f"{self.moved} orders of {self.downs} DOWN verdicts moved within {self.bound.text()}; slowest "
            f"{self.slowest:.3f} s after its origin; {self.late_verdicts} timed from a late verdict, "
            f"{self.pms_failovers} from a PMS takeover; {open_} not yet due at the end"
        )
        moved = Check(MOVED, not self.violations, "; ".join(self.violations[:5]) if self.violations else detail)
        assigned = Check(
            NOT_ASSIGNED,
            not self.assigned_violations,
            "; ".join(self.assigned_violations[:5])
            if self.assigned_violations
            else f"none between a DOWN verdict and the next UP over the run ({self.assigned_while_down} "
            "given before the PMS applied the DOWN moved with the others)",
        )
        return [moved, assigned]
