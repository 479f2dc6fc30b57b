"""``FactoryStatusService`` on the PMS: checks a report, reads its fence, hands it to the scheduler.

The servicer holds no state and no rules of its own beyond the wire: the order scheduler's one
``report_factory_status`` method (the same the bus request calls) validates the report, checks the
epoch against the newest seen and applies it. Here the enum becomes a status name, the metadata
becomes ``(epoch, lease)``, and the scheduler's result code becomes a gRPC status.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import grpc

from forge_sched.grpc.codes import grpc_code, status_name
from forge_sched.grpc.metadata import FenceError, read_fence
from forge_sched.orders.status import StatusHandler
from forge_sched.proto import factory_status_pb2 as pb
from forge_sched.proto.factory_status_pb2_grpc import FactoryStatusServiceServicer

__all__ = ["FactoryStatusServicer", "RpcFailure"]

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
        self.handler = handler

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
            result = await self.handler.report_factory_status(factory_id, status, request.reason, epoch, lease)
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
