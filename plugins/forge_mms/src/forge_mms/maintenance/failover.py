"""The failover manager: what the PMS must hear when a factory fails or is about to.

* a factory goes **DOWN** (fault detector) → report DOWN with the detector's reason: the PMS moves
  every unfinished order of it to factories with capacity; once the PMS answered the report (never
  before: the query would compete with the move), the capacity query, whose answer the DOWN's failover
  event records: free capacity elsewhere, the factory's load, whether its orders fit (or that it failed);
* a factory goes **DEGRADED** → report DEGRADED: the PMS gives it no new orders and drains its
  not-yet-started ones where capacity allows;
* **preemptive drain** (``drain_on_high_risk``): an UP factory whose risk is HIGH while the PMS reports
  free capacity on the other factories UP there and below HIGH risk (``should_preemptively_rebalance``
  with the capacity query's answer, at most ``capacity_max_age`` s old; the leader asks when it has none
  and decides once answered) → report DEGRADED with reason ``"risk HIGH"``; once its risk falls below
  HIGH (still UP) → report UP again. When the query fails (no answer within ``capacity_timeout``, no
  PMS, a reporter without ``capacity()``) the drain falls back to a stand-in: another factory UP below
  HIGH risk at the MMS. Only the leader starts a drain (a shadow asks the PMS nothing).

Reports go through :class:`~forge_mms.maintenance.reports.StatusReports` (leader only, fenced,
retried, recorded).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from forge_core.tactics import Status, StatusChange

from forge_mms.maintenance.capacity import CANCELLED, CapacityQuery, CapacityView
from forge_mms.maintenance.reports import StatusReports
from forge_mms.tactics.risk import Risk, should_preemptively_rebalance

__all__ = ["RISK_HIGH", "FailoverManager"]

RISK_HIGH = "risk HIGH"
_HIGH = Risk.HIGH


class FailoverManager:
    def __init__(self, reports: StatusReports, *, drain_on_high_risk: bool,
                 capacity: CapacityQuery | None = None,
                 statuses: Callable[[], Mapping[str, Status]] | None = None) -> None:
        self.reports = reports
        #: the statuses now (the fault detector's), for a decision taken between checks (_answered)
        self.statuses = statuses
        self.drain_on_high_risk = drain_on_high_risk
        #: None: no capacity query (the drain decides on its stand-in, a DOWN's event has no capacity)
        self.capacity = capacity
        self._last_seen: tuple[Mapping[str, Risk], Mapping[str, Status]] | None = None  # the last check's
        self._recheck = False  # a query is under way whose answer re-runs the drain decisions
        self.failovers = 0
        self.drains = 0
        #: The factories whose wanted report may be a drain for risk (RISK_HIGH, wanted by on_risk only):
        #: a superset, pruned by on_risks, so a check with no factory at HIGH risk and this empty returns at once.
        self._drained_for_risk = {f for f, r in reports.wanted.items() if r.reason == RISK_HIGH}

    def on_change(self, change: StatusChange) -> None:
        if change.new is Status.DOWN:
            self.failovers += 1
            # the query is asked by the report's task once the PMS answered it (StatusReports._send)
            self.reports.want(change.source, str(Status.DOWN), change.reason,
                              capacity=None if self.capacity is None else self.capacity.start)
        elif change.new is Status.DEGRADED:
            self.reports.want(change.source, str(Status.DEGRADED), change.reason)

    def draining(self, factory: str, risks: Mapping[str, Risk], statuses: Mapping[str, Status]) -> bool:
        """Whether ``factory`` is (to be) drained for risk, on the newest capacity answer (no query made)."""
        if not self.drain_on_high_risk:
            return False
        view = self.capacity.latest if self.capacity is not None else None
        return should_preemptively_rebalance(factory, risks, statuses, _free(view, factory, risks))

    def _answered(self, view: CapacityView) -> None:
        """The capacity query answered (or failed): the drains it held are decided now, not a check later."""
        self._recheck = False
        if self._last_seen is not None and view.error != CANCELLED:  # stopping: no new report
            risks, statuses = self._last_seen
            # the statuses as they are now, not as the last check saw them: a factory gone DOWN since
            # must not be reported UP by a drain's undo (the PMS would give it orders again)
            self.on_risks(risks, self.statuses() if self.statuses is not None else statuses)

    def on_risks(self, risks: Mapping[str, Risk], statuses: Mapping[str, Status]) -> None:
        """:meth:`on_risk` for every factory in ``statuses`` (the monitor's every check), skipping
        the factories for which it can do nothing: neither at HIGH risk (no drain to start) nor
        drained for risk (no drain to undo). That is nearly every factory on nearly every check (a
        plant of four factories: 4 calls a check, 4 checks a second per replica, each reading enums)."""
        self._last_seen = (risks, statuses)
        if not self._drained_for_risk and _HIGH not in risks.values():
            return  # no factory at HIGH risk and none drained for it: on_risk would do nothing for any
        wanted = self.reports.wanted
        for factory in statuses:
            if risks.get(factory) is _HIGH:
                self.on_risk(factory, risks, statuses)
                continue
            report = wanted.get(factory)
            if report is not None and report.reason == RISK_HIGH:
                self.on_risk(factory, risks, statuses)
        self._drained_for_risk = {f for f in self._drained_for_risk
                                  if (report := wanted.get(f)) is not None and report.reason == RISK_HIGH}

    def on_risk(self, factory: str, risks: Mapping[str, Risk], statuses: Mapping[str, Status]) -> None:
        """Drain an UP factory at HIGH risk (capacity allowing), or undo the drain once its risk fell."""
        wanted = self.reports.wanted.get(factory)
        if self.drain_on_high_risk and risks.get(factory) is _HIGH and statuses.get(factory) is Status.UP:
            if wanted is not None and wanted.reason == RISK_HIGH:
                return  # drained already
            view: CapacityView | None = None
            if self.capacity is not None:
                view = self.capacity.fresh()
                if view is None:  # no answer, or too old: asked now (the leader), decided once answered
                    if self.reports.leading() and not self._recheck:
                        self._recheck = True
                        self.capacity.start(then=self._answered)
                    return
            if should_preemptively_rebalance(factory, risks, statuses, _free(view, factory, risks)):
                self.drains += 1
                self._drained_for_risk.add(factory)
                record = None if view is None else dataclasses.replace(view, exclude=_high(risks))
                self.reports.want(factory, str(Status.DEGRADED), RISK_HIGH, capacity=record)
        elif wanted is not None and wanted.reason == RISK_HIGH and statuses.get(factory) is Status.UP \
                and risks.get(factory) is not Risk.HIGH:
            self.reports.want(factory, str(Status.UP), f"risk {risks.get(factory, Risk.LOW)}")


def _high(risks: Mapping[str, Risk]) -> frozenset[str]:
    return frozenset(f for f, r in risks.items() if r is _HIGH)


def _free(view: CapacityView | None, factory: str, risks: Mapping[str, Risk]) -> int | None:
    """Free capacity elsewhere for a drain (factories at HIGH risk left out); None: no answer (stand-in)."""
    if view is None or not view.ok:
        return None
    return view.free_elsewhere(factory, _high(risks))
