"""The client side: ``status_reporter.grpc``, a ``StatusReporter`` calling the PMS over gRPC.

One grpc.aio channel per reporter, opened on the first call (in the running loop) and reused;
grpc reconnects it by itself after the server restarts (its backoff capped by
``reconnect_backoff_max`` so the retry tactic's next attempt finds the new server).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from forge_sched.grpc.codes import REFUSED, RETRYABLE, status_number
from forge_sched.grpc.errors import StatusReportRejected, StatusReportUnavailable
from forge_sched.grpc.metadata import fence_metadata
from forge_sched.proto import factory_status_pb2 as pb
from forge_sched.proto.factory_status_pb2_grpc import FactoryStatusServiceStub
from forge_sched.settings import GrpcStatusReporterSettings

__all__ = ["GrpcStatusReporter", "ReportResult"]


@dataclass(frozen=True)
class ReportResult:
    """What the PMS answered: accepted, or refused (``code`` FAILED_PRECONDITION for a stale epoch,
    INVALID_ARGUMENT for a malformed report; ``detail`` says why). Shaped like forge_mms's
    ``ReportResult`` (accepted, detail, orders_moved) plus the gRPC code."""

    accepted: bool
    detail: str
    orders_moved: int = 0
    code: str = "OK"


class GrpcStatusReporter:
    """``await reporter.report("factory-2", "DOWN", "3 beats missed", epoch=4, lease="mms")``.

    As the ``status_reporter`` kind has it (forge_mms): an answer of the PMS is a
    :class:`ReportResult`, a refusal included (``accepted=False``: not to be retried as is); no
    answer raises :class:`~forge_sched.grpc.errors.StatusReportUnavailable` (UNAVAILABLE,
    DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED; a ``forge_core.TransportNotReady``: retry). Any
    other status (UNIMPLEMENTED: not a PMS at the target, INTERNAL, UNAUTHENTICATED, ...) raises
    :class:`~forge_sched.grpc.errors.StatusReportRejected` (a ``TransportError``; retrying the same
    call will not help). ``aclose()`` closes the channel; a later report opens a new one.
    """

    def __init__(self, settings: GrpcStatusReporterSettings) -> None:
        self.settings = settings
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    @property
    def target(self) -> str:
        return self.settings.target

    def _open(self) -> Any:
        if self._stub is None:
            s = self.settings
            backoff_ms = int(s.reconnect_backoff_max * 1000)
            options = [("grpc.max_reconnect_backoff_ms", backoff_ms),
                       ("grpc.initial_reconnect_backoff_ms", min(100, backoff_ms)),
                       ("grpc.min_reconnect_backoff_ms", min(100, backoff_ms))]
            if s.tls:
                self._channel = grpc.aio.secure_channel(s.target, self._credentials(), options=options)
            else:
                self._channel = grpc.aio.insecure_channel(s.target, options=options)
            self._stub = FactoryStatusServiceStub(self._channel)
        return self._stub

    def _credentials(self) -> grpc.ChannelCredentials:
        s = self.settings

        def read(path: str | None) -> bytes | None:
            return Path(path).read_bytes() if path is not None else None

        return grpc.ssl_channel_credentials(root_certificates=read(s.ca_cert), private_key=read(s.client_key),
                                            certificate_chain=read(s.client_cert))

    async def report(self, factory_id: str, status: str, reason: str, *, epoch: int, lease: str) -> ReportResult:
        """Report ``status`` (UP, DEGRADED or DOWN) of ``factory_id`` under the fence ``(lease, epoch)``."""
        try:
            request = pb.FactoryStatusUpdate(factory_id=factory_id, status=status_number(status), reason=reason)
        except ValueError as exc:  # refused here as the PMS would refuse it
            return ReportResult(False, f"status: {exc}", 0, "INVALID_ARGUMENT")
        stub = self._open()
        try:
            response = await stub.ReportFactoryStatus(request, timeout=self.settings.timeout,
                                                      metadata=fence_metadata(epoch, lease))
        except grpc.aio.AioRpcError as exc:
            code, detail = exc.code(), exc.details() or ""
            if code in REFUSED:
                return ReportResult(False, detail, 0, code.name)
            error = StatusReportUnavailable if code in RETRYABLE else StatusReportRejected
            raise error(code.name, detail, target=self.target) from None
        return ReportResult(response.accepted, response.detail, response.orders_moved)

    async def aclose(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()
