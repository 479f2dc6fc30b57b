"""``sched.order_scheduler``'s answers on the bus to the MMS: status reports and capacity queries.

The leader answers both (one answer per request on the bus; a reporter that hears nothing retries). The
gRPC servicer calls the same entries (:meth:`OrderScheduler.report_factory_status`, :func:`factory_capacity`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from forge_core import Envelope

from forge_sched.orders import queries
from forge_sched.orders.status import FactoryCapacity

if TYPE_CHECKING:
    from forge_sched.components.order_scheduler import OrderScheduler

__all__ = ["FACTORY_CAPACITY", "STATUS_REPORT_RESULT", "answer_capacity_query", "answer_status_report",
           "factory_capacity"]

STATUS_REPORT_RESULT = "sched.status_report_result"
FACTORY_CAPACITY = "sched.factory_capacity"


def _request_id(scheduler: OrderScheduler, envelope: Envelope) -> tuple[str | None, dict[str, Any]]:
    body = envelope.payload if isinstance(envelope.payload, dict) else {}
    request_id = body.get("requestId")
    if not isinstance(request_id, str) or not request_id:
        scheduler.counts["bad_messages"] += 1
        scheduler.ctx.log.warning("%s without requestId on %s: not answered", envelope.type, envelope.topic)
        return None, body
    return request_id, body


async def answer_status_report(scheduler: OrderScheduler, envelope: Envelope) -> None:
    """``mms.status_report`` -> ``sched.status_report_result``."""
    if not scheduler.leading:
        return  # the leader answers; a reporter that hears nothing retries
    request_id, body = _request_id(scheduler, envelope)
    if request_id is None:
        return
    result = await scheduler.report_factory_status(body.get("factoryId"), body.get("status"),
                                                   body.get("reason", ""), body.get("epoch"), body.get("lease"))
    await scheduler.ctx.publish(scheduler.params.topics.status_report_result, STATUS_REPORT_RESULT,
                                {"requestId": request_id, "accepted": result.accepted, "detail": result.detail,
                                 "ordersMoved": result.orders_moved, "code": result.code, "field": result.field},
                                key=request_id)


def factory_capacity(scheduler: OrderScheduler) -> list[FactoryCapacity]:
    """Every factory's capacity, load and free capacity (GET /factories's read), leader or shadow."""
    return [FactoryCapacity(v["id"], v["status"], v["capacity"], v["load"], v["free"])
            for v in queries.factory_views(scheduler.transactor.engine, connect=scheduler.transactor.connect)]


async def answer_capacity_query(scheduler: OrderScheduler, envelope: Envelope) -> None:
    """``mms.capacity_query`` -> ``sched.factory_capacity``: the leader answers (one answer per query on the
    bus; over gRPC any replica does), ``code: unavailable`` when the database cannot be read."""
    if not scheduler.leading:
        return
    request_id, _ = _request_id(scheduler, envelope)
    if request_id is None:
        return
    answer: dict[str, Any] = {"requestId": request_id, "factories": [], "code": "ok"}
    try:
        answer["factories"] = [{"factoryId": f.factory_id, "status": f.status, "capacity": f.capacity,
                                "load": f.load, "free": f.free} for f in factory_capacity(scheduler)]
    except sa.exc.SQLAlchemyError as exc:
        answer.update(code="unavailable", detail=f"database unavailable, retry: {exc}")
    scheduler.counts["capacity_queries"] = scheduler.counts.get("capacity_queries", 0) + 1
    await scheduler.ctx.publish(scheduler.params.topics.status_report_result, FACTORY_CAPACITY, answer,
                                key=request_id)
