"""Status reports to the PMS: the wanted status per factory, delivered by the leader only.

The failover, recovery and drain rules say what status the PMS should hold for a factory
(:meth:`StatusReports.want`); this keeps reporting until the PMS has accepted it:

* only while this instance leads (``elector.fence()`` before every attempt: a deposed MMS stops
  calling, even between two retries), each call carrying the fencing epoch and the lease name;
* each report through the ``status_reporter`` tactic wrapped in the core retry tactic
  (``tactics.retry``: backoff, jitter, max attempts) for "no answer" (a timeout,
  ``TransportNotReady``); a refusal (``accepted=False``, e.g. a stale epoch) is an answer, and
  another ``TransportError`` (no PMS at the target) is no use retrying now: neither is retried;
* when the retries are spent or the PMS refused, again ``resend_after`` s later while the wanted
  status still differs from the accepted one (so a PMS restart loses no report); one report in
  flight per factory, the newest wanted status sent next;
* every report made is a failover event (a row of ``failover_events`` and an ``mms.failover_event``);
  a report wanted with ``capacity`` (a DOWN: the capacity query, asked once the PMS answered the
  report, so the query neither delays the report nor competes with the PMS's move; a risk drain: the
  answer it was decided on) carries what the query said in its event (the query is bounded by its
  own timeout).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from forge_core import ComponentContext, TransportError, TransportNotReady
from forge_core.tactics import LeaderElector, NotLeader, RetryPolicy
from forge_core.transport import topic_level

from forge_mms.maintenance.capacity import CapacityView
from forge_mms.tactics.status_reporter import ReportResult, StatusReporter

__all__ = ["FAILOVER_EVENT", "Report", "StatusReports"]

FAILOVER_EVENT = "mms.failover_event"
log = logging.getLogger("forge_mms.reports")


@dataclass(frozen=True)
class Report:
    status: str
    reason: str
    #: what the capacity query said for the report's event, or the query to ask once the PMS answered
    capacity: CapacityView | Callable[[], Awaitable[CapacityView]] | None = field(default=None, compare=False)


class _GiveUp(Exception):
    """A reporter error that retrying at once cannot fix (a TransportError other than TransportNotReady)."""


class StatusReports:
    """Wanted vs accepted status per factory, reconciled by the leader (module docstring)."""

    def __init__(self, ctx: ComponentContext, reporter: StatusReporter, retry: RetryPolicy, *,
                 elector: Callable[[], LeaderElector | None], topic: str, resend_after: float,
                 record: Callable[[dict[str, Any]], Awaitable[None]],
                 accepted: Callable[[str, str, int], Awaitable[None]]) -> None:
        self.ctx = ctx
        self.reporter = reporter
        self.retry = retry
        retry.give_up_on = (*retry.give_up_on, NotLeader, _GiveUp)  # deposed, or hopeless now: no backoff
        self._elector = elector
        self.topic = topic
        self.resend_after = resend_after
        self._record = record
        self._accepted_hook = accepted
        self.wanted: dict[str, Report] = {}
        self._accepted: dict[str, str] = {}
        #: The factories whose wanted status differs from the accepted one (what tick() has to kick):
        #: tick() runs on every check, and nearly always every wanted status has been accepted.
        self._open: set[str] = set()
        self._in_flight: set[str] = set()
        self._not_before: dict[str, float] = {}
        self.stats = {"reports": 0, "accepted": 0, "rejected": 0, "failed": 0, "attempts": 0}
        #: gated: nothing is reported in an epoch before :attr:`ready_epoch` names it (the owner's takeover
        #: is done): a new leader first judges what it saw as a standby, then reports (FactoryMonitor)
        self.gated = False
        self.ready_epoch: int | None = None

    def want(self, factory: str, status: str, reason: str,
             capacity: CapacityView | Callable[[], Awaitable[CapacityView]] | None = None) -> None:
        """The PMS should hold ``status`` for ``factory``; reported now if leading."""
        self.wanted[factory] = Report(status, reason, capacity)
        self._reopen(factory)
        self._not_before.pop(factory, None)  # a new verdict goes out now, not after a backoff
        self.kick(factory)

    @property
    def accepted(self) -> dict[str, str]:
        """The status the PMS last accepted per factory (read it; set it whole, as a new leader does)."""
        return self._accepted

    @accepted.setter
    def accepted(self, statuses: dict[str, str]) -> None:
        self._accepted = statuses
        for factory in self.wanted:
            self._reopen(factory)

    def _reopen(self, factory: str) -> None:
        wanted = self.wanted.get(factory)
        if wanted is not None and self._accepted.get(factory) != wanted.status:
            self._open.add(factory)
        else:
            self._open.discard(factory)

    def pending(self) -> dict[str, Report]:
        return {f: r for f, r in self.wanted.items() if self.accepted.get(f) != r.status}

    def in_flight(self, factory: str) -> bool:
        """A report for ``factory`` is under way (its end writes the status row and the event)."""
        return factory in self._in_flight

    def leading(self) -> bool:
        elector = self._elector()
        return elector is not None and elector.is_leader and (not self.gated or self.ready_epoch == elector.epoch)

    def kick(self, factory: str) -> None:
        wanted = self.wanted.get(factory)
        if wanted is None or self.accepted.get(factory) == wanted.status or factory in self._in_flight:
            return
        if not self.leading() or self.ctx.clock.monotonic() < self._not_before.get(factory, 0.0):
            return
        self._in_flight.add(factory)
        self.ctx.spawn(self._send(factory, wanted), name=f"report:{factory}")

    def tick(self) -> None:
        """Retry what is still pending (called on every check)."""
        if not self._open or not self.leading():  # kick() sends nothing then
            return
        for factory in [f for f in self.wanted if f in self._open]:  # kick()'s order: the wanted dict's
            self.kick(factory)

    async def _send(self, factory: str, report: Report) -> None:
        attempts, epoch = 0, 0

        async def once() -> ReportResult:
            nonlocal attempts, epoch
            elector = self._elector()
            if elector is None:
                raise NotLeader(f"{self.ctx.name} does not campaign")
            epoch = elector.fence()  # raises NotLeader once deposed
            attempts += 1
            try:
                return await self.reporter.report(factory, report.status, report.reason, epoch=epoch,
                                                  lease=elector.name)
            except TransportError as exc:
                if isinstance(exc, TransportNotReady):
                    raise
                raise _GiveUp(f"{type(exc).__name__}: {exc}") from exc

        outcome, detail, moved = "failed", "", 0
        capacity: CapacityView | None = None
        try:
            try:
                result = await self.retry.acall(once)
                outcome = "accepted" if result.accepted else "rejected"
                detail, moved = result.detail, result.orders_moved
            except NotLeader as exc:
                detail = f"deposed: {exc}"
            except Exception as exc:  # noqa: BLE001 - whatever the reporter raised, retries spent: resend later
                detail = f"{type(exc).__name__}: {exc}"
            if attempts and report.capacity is not None:  # asked now, after the report (bounded by its timeout)
                capacity = report.capacity if isinstance(report.capacity, CapacityView) else await report.capacity()
        finally:
            self._in_flight.discard(factory)
        self.stats["attempts"] += attempts
        if attempts == 0:
            return  # not leading any more: nothing was said to the PMS
        self.stats["reports"] += 1
        self.stats[outcome] += 1
        if outcome == "accepted":
            self._accepted[factory] = report.status
            self._reopen(factory)
            await self._accepted_hook(factory, report.status, epoch)
        else:
            self._not_before[factory] = self.ctx.clock.monotonic() + self.resend_after
            log.warning("%s: report %s %s %s after %d attempt(s): %s", self.ctx.name, factory, report.status,
                        outcome, attempts, detail)
        event: dict[str, Any] = {"factoryId": factory, "status": report.status, "reason": report.reason,
                                 "epoch": epoch, "attempts": attempts, "outcome": outcome, "detail": detail,
                                 "ordersMoved": moved}
        if capacity is not None:
            event["capacity"] = capacity.event(factory)
        await self._record(event)
        await self.ctx.publish(self.topic.format(factory=topic_level(factory)), FAILOVER_EVENT, event, key=factory)
        self.kick(factory)  # the wanted status may have changed meanwhile
