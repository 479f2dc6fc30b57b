"""The recovery manager: a factory back to UP is reported UP, so the PMS rebalances onto it.

The fault detector moves a DOWN or DEGRADED factory to UP after ``recover_after`` (5) consecutive
healthy, on-time beats (core's heartbeat status tactic counts them); a factory discovered on its
first beat starts UP and is reported too (the PMS adds an unknown factory). Not while the failover
manager drains the factory for HIGH risk: it stays DEGRADED ("risk HIGH") at the PMS until its risk falls.
"""

from __future__ import annotations

from collections.abc import Callable

from forge_core.tactics import Status, StatusChange

from forge_mms.maintenance.reports import StatusReports

__all__ = ["RecoveryManager"]


class RecoveryManager:
    def __init__(self, reports: StatusReports, *, draining: Callable[[str], bool]) -> None:
        self.reports = reports
        self.draining = draining
        self.recoveries = 0

    def on_change(self, change: StatusChange) -> None:
        if change.new is not Status.UP or self.draining(change.source):
            return
        if change.old is not None:
            self.recoveries += 1
        self.reports.want(change.source, str(Status.UP), change.reason)
