"""What ``mms.factory_monitor`` writes about a factory: its ``factory_status`` row, a failover event's
capacity columns, and the statuses a new leader announces on the status topic at takeover."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forge_core.tactics import Status
from forge_core.transport import topic_level

from forge_mms.tactics.risk import Risk

if TYPE_CHECKING:
    from forge_mms.components.factory_monitor import FactoryMonitor

__all__ = ["announce_pending", "capacity_columns", "status_row"]

FORGE_STATUS = "forge.status"


def status_row(monitor: FactoryMonitor, factory: str) -> dict[str, Any]:
    """``factory``'s ``factory_status`` row as the monitor sees it now."""
    last = next((c for c in reversed(monitor.changes) if c.source == factory), None)
    status = monitor.faults.status(factory) or Status.UP
    assessment = monitor.assessments.get(factory)
    return {"status": str(status), "reason": last.reason if last else "", "since": last.at if last else 0.0,
            "risk": str(monitor.risks.get(factory, Risk.LOW)),
            "error_rate": assessment.error_rate if assessment else None, "updated_at": monitor.ctx.clock.time()}


def capacity_columns(capacity: dict[str, Any] | None) -> dict[str, Any]:
    """The failover_events columns of an event's capacity (none when no query backed the report)."""
    if capacity is None:
        return {}
    return {"free_elsewhere": capacity["freeElsewhere"], "orders_fit": capacity["fits"],
            "capacity_detail": capacity["detail"]}


async def announce_pending(monitor: FactoryMonitor) -> None:
    """``forge.status`` for each factory whose status (the fault detector's) the PMS does not hold, at a
    takeover: a change the shadow saw while the leader was dead was published by nobody, and the watchers
    of the status topic learn it before the PMS acts on the report that follows."""
    accepted = monitor.reports.accepted
    for factory, report in monitor.reports.pending().items():
        status = monitor.faults.status(factory)
        if status is None or report.status != str(status):  # a drain's DEGRADED is no fault status
            continue
        last = next((c for c in reversed(monitor.changes) if c.source == factory), None)
        await monitor.ctx.publish(monitor.params.status_topic.format(factory=topic_level(factory)), FORGE_STATUS, {
            "source": factory, "status": report.status, "previous": accepted.get(factory),
            "at": last.at if last is not None else monitor.ctx.clock.time(),
            "reason": f"{report.reason} (judged while standby; announced at takeover)",
            "monitor": monitor.name}, key=factory)
