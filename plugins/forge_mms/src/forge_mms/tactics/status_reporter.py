"""Tactic kind ``status_reporter``: how the MMS tells the production management system (PMS) a
factory's status, and its in-process implementation ``status_reporter.bus``.

forge_mms declares the kind (no shared settings, default ``use: bus``); forge_sched registers
``status_reporter.grpc`` (``ReportFactoryStatus`` over gRPC). Either is built per component by
``ctx.tactics.get("status_reporter")`` and used as :class:`StatusReporter`. An implementation may
define ``async start(ctx)`` (called once by the component before the first report: the bus one
subscribes to the answers there) and ``async aclose()`` (called when the component stops).

``report`` returns a :class:`ReportResult` when the PMS answered (``accepted=False``: it refused,
e.g. a stale fencing epoch; not retried) and raises when it did not: a timeout, or
``forge_core.TransportNotReady`` (unreachable, or the PMS answered ``unavailable``/``not_leader``)
are retried by the caller's retry tactic; another ``forge_core.TransportError`` (e.g. no PMS
at the target) ends the retries and the report is sent again later.

An implementation may also answer ``async capacity()``: every factory's capacity, load and free
capacity as the PMS holds them (:class:`FactoryCapacity`-shaped items), raising as ``report`` does
when the PMS does not answer. The failover manager asks it on DOWN and before a risk drain
(:mod:`forge_mms.maintenance.capacity`); a reporter without it leaves them to their fallback.
The bus one sends ``mms.capacity_query`` on ``request_topic`` and waits for ``sched.factory_capacity``
on ``reply_topic``; the gRPC one calls ``GetFactoryCapacity``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from forge_core import ComponentContext, Envelope, IdGenerator, TransportNotReady

from forge_mms.settings import BusStatusReporterSettings

__all__ = ["CAPACITY_QUERY", "FACTORY_CAPACITY", "STATUS_REPORT", "STATUS_REPORT_RESULT", "BusStatusReporter",
           "CapacityReader", "FactoryCapacity", "ReportResult", "StatusReporter", "make_bus_reporter"]

STATUS_REPORT = "mms.status_report"
#: The answer's type; its schema belongs to forge_sched (the PMS side).
STATUS_REPORT_RESULT = "sched.status_report_result"
CAPACITY_QUERY = "mms.capacity_query"
#: The capacity answer's type; its schema belongs to forge_sched.
FACTORY_CAPACITY = "sched.factory_capacity"
#: Answer codes that decide nothing (the order scheduler's not_leader / unavailable).
_NOT_AN_ANSWER = frozenset({"not_leader", "unavailable"})


@dataclass(frozen=True)
class ReportResult:
    accepted: bool
    detail: str = ""
    orders_moved: int = 0
    code: str = "ok"  # the PMS's reason when not accepted: stale_epoch, invalid_argument, ...


@dataclass(frozen=True)
class FactoryCapacity:
    """One factory as the PMS holds it: ``free`` = ``capacity`` - ``load`` (orders held)."""

    factory_id: str
    status: str
    capacity: int
    load: int
    free: int


class StatusReporter(Protocol):
    async def report(self, factory_id: str, status: str, reason: str, *, epoch: int, lease: str) -> ReportResult:
        ...


class CapacityReader(Protocol):
    """A reporter that also answers the capacity query (optional: module docstring)."""

    async def capacity(self) -> Sequence[FactoryCapacity]: ...


class BusStatusReporter:
    """``status_reporter.bus``: ``mms.status_report`` on ``request_topic``, the answer
    ``sched.status_report_result`` with the same ``requestId`` on ``reply_topic`` within ``timeout``."""

    def __init__(self, settings: BusStatusReporterSettings, seed: int | None = None) -> None:
        self.settings = settings
        self._ids = IdGenerator(seed)
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._ctx: ComponentContext | None = None
        self.stats = {"sent": 0, "answered": 0, "timeouts": 0, "unmatched": 0, "capacity_queries": 0}

    async def start(self, ctx: ComponentContext) -> None:
        self._ctx = ctx
        # not shared: with replicas, the answer must reach the instance that asked
        await ctx.subscribe(self.settings.reply_topic, self._on_result, types=[STATUS_REPORT_RESULT], shared=False)
        await ctx.subscribe(self.settings.reply_topic, self._on_capacity, types=[FACTORY_CAPACITY], shared=False)

    async def aclose(self) -> None:
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()

    async def report(self, factory_id: str, status: str, reason: str, *, epoch: int, lease: str) -> ReportResult:
        result: ReportResult = await self._ask(
            "report", STATUS_REPORT, {"factoryId": factory_id, "status": status, "reason": reason, "epoch": epoch,
                                      "lease": lease}, key=factory_id, sent="sent",
            answer=STATUS_REPORT_RESULT, about=f" ({factory_id} {status})")
        return result

    async def capacity(self) -> list[FactoryCapacity]:
        """``mms.capacity_query`` on ``request_topic``, the leader's ``sched.factory_capacity`` within ``timeout``."""
        factories: list[FactoryCapacity] = await self._ask("capacity", CAPACITY_QUERY, {}, key=None,
                                                           sent="capacity_queries", answer=FACTORY_CAPACITY)
        return factories

    async def _ask(self, call: str, type_: str, body: dict[str, Any], *, key: str | None, sent: str,
                   answer: str, about: str = "") -> Any:
        """Publish ``type_`` with a new ``requestId`` on ``request_topic`` and wait ``timeout`` s for the
        ``answer`` the subscription hands to its future (named, with ``about``, in the timeout's message)."""
        ctx = self._ctx
        if ctx is None:
            raise RuntimeError(f"status_reporter.bus: start(ctx) was not called before {call}()")
        request_id = f"{ctx.name}-{self._ids()}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            await ctx.publish(self.settings.request_topic, type_, {"requestId": request_id, **body},
                              key=key if key is not None else request_id)
            self.stats[sent] += 1
            try:
                async with asyncio.timeout(self.settings.timeout):
                    return await future
            except TimeoutError:
                self.stats["timeouts"] += 1
                raise TimeoutError(f"status_reporter.bus: no {answer} for {request_id}{about} "
                                   f"within {self.settings.timeout} s") from None
        finally:
            self._waiting.pop(request_id, None)

    async def _on_capacity(self, envelope: Envelope) -> None:
        body: dict[str, Any] = envelope.payload
        future = self._waiting.get(str(body.get("requestId")))
        if future is None or future.done():
            self.stats["unmatched"] += 1
            return
        self.stats["answered"] += 1
        if (body.get("code") or "ok") != "ok":
            future.set_exception(TransportNotReady(f"status_reporter.bus: the PMS answered {body.get('code')}: "
                                                   f"{body.get('detail', '')}"))
            return
        future.set_result([FactoryCapacity(str(f["factoryId"]), str(f["status"]), int(f["capacity"]),
                                           int(f["load"]), int(f["free"])) for f in body.get("factories", [])])

    async def _on_result(self, envelope: Envelope) -> None:
        body: dict[str, Any] = envelope.payload
        future = self._waiting.get(str(body.get("requestId")))
        if future is None or future.done():
            self.stats["unmatched"] += 1  # another replica's, or answered after its timeout
            return
        self.stats["answered"] += 1
        code = str(body.get("code") or "ok")
        if code in _NOT_AN_ANSWER:  # the PMS could not decide now (deposed, database down): retried
            future.set_exception(TransportNotReady(f"status_reporter.bus: the PMS answered {code}: "
                                                   f"{body.get('detail', '')}"))
            return
        future.set_result(ReportResult(bool(body.get("accepted")), str(body.get("detail", "")),
                                       int(body.get("ordersMoved", 0)), code))


def make_bus_reporter(settings: BusStatusReporterSettings, services: Any) -> BusStatusReporter:
    """The ``status_reporter.bus`` factory."""
    return BusStatusReporter(settings, getattr(services, "seed", None))
