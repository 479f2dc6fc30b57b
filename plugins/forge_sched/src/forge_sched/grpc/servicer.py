"""``FactoryStatusService`` on the PMS: checks a report, reads its fence, hands it to the scheduler.

The servicer holds no state and no rules of its own beyond the wire: the order scheduler's one
``report_factory_status`` method (the same the bus request calls) validates the report, checks the
epoch against the newest seen and applies it. Here the enum becomes a status name, the metadata
becomes ``(epoch, lease)``, and the scheduler's result code becomes a gRPC status.

``GetFactoryCapacity`` is a read of the database (``handler.factory_capacity``): the first handler
answers, leader or shadow alike (a shadow reads the leader's committed figures); no fence is asked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import grpc

from forge_sched.grpc.codes import grpc_code, status_name, status_number
from forge_sched.grpc.metadata import FenceError, read_fence
from forge_sched.orders.status import FactoryCapacity, StatusHandler, StatusReportResult
from forge_sched.proto import SERVICE_NAME
from forge_sched.proto import factory_status_pb2 as pb
from forge_sched.proto.factory_status_pb2_grpc import (
    FactoryStatusServiceServicer,
    add_FactoryStatusServiceServicer_to_server,
)

if TYPE_CHECKING:
    from forge_core import ComponentContext

__all__ = ["FactoryStatusServicer", "RpcFailure", "register"]

log = logging.getLogger("forge_sched.grpc")


class RpcFailure(Exception):
    """A report refused with a gRPC status; raised to in-process callers (``context=None``),
    turned into ``context.abort(code, detail)`` on a real call."""

    def __init__(self, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(f"{code.name}: {detail}")
        self.code = code
        self.detail = detail


class FactoryStatusServicer(FactoryStatusServiceServicer):
    """``forge.sched.v1.FactoryStatusService`` delegating to ``handler.report_factory_status``.

    Serve it with ``await ctx.grpc.add(add_FactoryStatusServiceServicer_to_server, servicer,
    SERVICE_NAME)``. Under a virtual clock there is no socket: call :meth:`report` with the
    metadata pairs, or ``ReportFactoryStatus(request, None)`` (no metadata: refused as unfenced).
    """

    def __init__(self, handler: StatusHandler) -> None:
        #: Replicas of the scheduler in one process share the servicer; the leader answers.
        self.handlers: list[StatusHandler] = [handler]

    def add_handler(self, handler: StatusHandler) -> None:
        if handler not in self.handlers:
            self.handlers.append(handler)

    async def _delegate(self, factory_id: str, status: str, reason: str, epoch: int,
                        lease: str) -> StatusReportResult:
        """The first handler that does not answer not_leader (a shadow replica) decides."""
        result: StatusReportResult | None = None
        for handler in list(self.handlers):
            result = await handler.report_factory_status(factory_id, status, reason, epoch, lease)
            if result.code != "not_leader":
                break
        assert result is not None  # there is always one handler
        return result

    async def ReportFactoryStatus(self, request: pb.FactoryStatusUpdate,
                                  context: grpc.aio.ServicerContext | None) -> pb.StatusResponse:
        metadata = context.invocation_metadata() if context is not None else ()
        try:
            return await self.report(request, metadata)
        except RpcFailure as failure:
            if context is None:
                raise
            await context.abort(failure.code, failure.detail)
            raise  # abort raises; this line is for type checkers

    async def report(self, request: pb.FactoryStatusUpdate, metadata: Iterable[Any] | None) -> pb.StatusResponse:
        """The call without gRPC around it: the response, or :class:`RpcFailure`."""
        factory_id = request.factory_id
        if not factory_id.strip():
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "factory_id: required (a non-empty id)")
        status = status_name(request.status)
        if status is None:
            name = "UNSPECIFIED" if request.status == pb.UNSPECIFIED else "unknown"
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT,
                             f"status: {name} ({int(request.status)}) is not a status; send UP, DEGRADED or DOWN")
        try:
            epoch, lease = read_fence(metadata)
        except FenceError as exc:
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        try:
            result = await self._delegate(factory_id, status, request.reason, epoch, lease)
        except Exception as exc:
            log.exception("forge_sched: ReportFactoryStatus(%s, %s) failed in the order scheduler", factory_id, status)
            raise RpcFailure(grpc.StatusCode.INTERNAL,
                             f"the order scheduler failed: {type(exc).__name__}: {exc}") from exc
        if result.code != "ok":
            detail = result.detail
            if result.code == "invalid_argument" and result.field and result.field not in detail:
                detail = f"{result.field}: {detail}"  # INVALID_ARGUMENT always names the field
            raise RpcFailure(grpc_code(result.code), detail)
        return pb.StatusResponse(accepted=result.accepted, detail=result.detail, orders_moved=result.orders_moved)

    async def GetFactoryCapacity(self, request: pb.CapacityRequest,
                                 context: grpc.aio.ServicerContext | None) -> pb.CapacityResponse:
        try:
            return await self.capacity()
        except RpcFailure as failure:
            if context is None:
                raise
            await context.abort(failure.code, failure.detail)
            raise  # abort raises; this line is for type checkers

    async def capacity(self) -> pb.CapacityResponse:
        """Every factory's capacity from the first handler that can read it (a read: a shadow answers
        as well as the leader), or :class:`RpcFailure` (UNAVAILABLE when none could read the database)."""
        views: list[FactoryCapacity] | None = None
        failures: list[str] = []
        for handler in list(self.handlers):
            read = getattr(handler, "factory_capacity", None)
            if read is None:
                failures.append(f"{type(handler).__name__} answers no capacity query (no factory_capacity())")
                continue
            try:
                views = await read()
                break
            except Exception as exc:  # noqa: BLE001 - a replica that cannot read now: the next one may
                failures.append(f"{type(exc).__name__}: {exc}")
        if views is None:
            log.warning("forge_sched: GetFactoryCapacity failed: %s", "; ".join(failures))
            raise RpcFailure(grpc.StatusCode.UNAVAILABLE, "factory capacity unreadable, retry: " + "; ".join(failures))
        return pb.CapacityResponse(factories=[
            pb.FactoryCapacity(factory_id=v.factory_id, status=status_number(v.status), capacity=v.capacity,
                               load=v.load, free=v.free) for v in views])


async def register(ctx: ComponentContext, handler: StatusHandler) -> FactoryStatusServicer:
    """Serve ``handler`` (the order scheduler) as ``forge.sched.v1.FactoryStatusService`` on the
    runtime's gRPC server (``ctx.grpc``; RuntimeError where the runtime has none). A second
    replica in the same process joins the servicer the first one added."""
    try:
        served = ctx.grpc.servicer(SERVICE_NAME)
    except KeyError:
        servicer = FactoryStatusServicer(handler)
        await ctx.grpc.add(add_FactoryStatusServiceServicer_to_server, servicer, SERVICE_NAME)
        return servicer
    if isinstance(served, FactoryStatusServicer):
        served.add_handler(handler)
        return served
    # as ctx.grpc.add says of a taken name (the order scheduler logs it and goes on without gRPC)
    raise ValueError(f"{SERVICE_NAME} is already served by something else: {type(served).__name__}")
