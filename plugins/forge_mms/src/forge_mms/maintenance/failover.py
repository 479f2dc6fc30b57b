"""The failover manager: what the PMS must hear when a factory fails or is about to.

* a factory goes **DOWN** (fault detector) → report DOWN with the detector's reason: the PMS moves
  every unfinished order of it to factories with capacity;
* a factory goes **DEGRADED** → report DEGRADED: the PMS gives it no new orders and drains its
  not-yet-started ones where capacity allows;
* **preemptive drain** (``drain_on_high_risk``): an UP factory whose risk is HIGH while another
  factory is UP below HIGH risk (``should_preemptively_rebalance``) → report DEGRADED with reason
  ``"risk HIGH"``; once its risk falls below HIGH (still UP) → report UP again.

Reports go through :class:`~forge_mms.maintenance.reports.StatusReports` (leader only, fenced,
retried, recorded).
"""

from __future__ import annotations

from collections.abc import Mapping

from forge_core.tactics import Status, StatusChange

from forge_mms.maintenance.reports import StatusReports
from forge_mms.tactics.risk import Risk, should_preemptively_rebalance

__all__ = ["RISK_HIGH", "FailoverManager"]

RISK_HIGH = "risk HIGH"
_HIGH = Risk.HIGH


class FailoverManager:
    def __init__(self, reports: StatusReports, *, drain_on_high_risk: bool) -> None:
        self.reports = reports
        self.drain_on_high_risk = drain_on_high_risk
        self.failovers = 0
        self.drains = 0
        #: The factories whose wanted report may be a drain for risk (RISK_HIGH, wanted by on_risk only):
        #: a superset, pruned by on_risks, so a check with no factory at HIGH risk and this empty returns at once.
        self._drained_for_risk = {f for f, r in reports.wanted.items() if r.reason == RISK_HIGH}

    def on_change(self, change: StatusChange) -> None:
        if change.new is Status.DOWN:
            self.failovers += 1
            self.reports.want(change.source, str(Status.DOWN), change.reason)
        elif change.new is Status.DEGRADED:
            self.reports.want(change.source, str(Status.DEGRADED), change.reason)

    def draining(self, factory: str, risks: Mapping[str, Risk], statuses: Mapping[str, Status]) -> bool:
        return self.drain_on_high_risk and should_preemptively_rebalance(factory, risks, statuses)

    def on_risks(self, risks: Mapping[str, Risk], statuses: Mapping[str, Status]) -> None:
        """:meth:`on_risk` for every factory in ``statuses`` (the monitor's every check), skipping
        the factories for which it can do nothing: neither at HIGH risk (no drain to start) nor
        drained for risk (no drain to undo). That is nearly every factory on nearly every check (a
        plant of four factories: 4 calls a check, 4 checks a second per replica, each reading enums)."""
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
        """Drain an UP factory at HIGH risk, or undo the drain once its risk fell."""
        wanted = self.reports.wanted.get(factory)
        if self.draining(factory, risks, statuses):
            if wanted is None or wanted.reason != RISK_HIGH:
                self.drains += 1
                self._drained_for_risk.add(factory)
                self.reports.want(factory, str(Status.DEGRADED), RISK_HIGH)
        elif wanted is not None and wanted.reason == RISK_HIGH and statuses.get(factory) is Status.UP \
                and risks.get(factory) is not Risk.HIGH:
            self.reports.want(factory, str(Status.UP), f"risk {risks.get(factory, Risk.LOW)}")
