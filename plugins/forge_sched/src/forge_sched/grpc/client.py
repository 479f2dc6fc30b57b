"""The client side: ``status_reporter.grpc``, a ``StatusReporter`` calling the PMS over gRPC.

One grpc.aio channel per target, opened on its first call (in the running loop) and reused;
grpc reconnects it by itself after the server restarts (its backoff capped by
``reconnect_backoff_max`` so the retry tactic's next attempt finds the new server).

Several PMS replicas: ``targets`` lists them and ``endpoints_topic`` learns them (and which one
leads) from the order scheduler's ``sched.endpoint`` announcements, for replicas on ephemeral
ports. A call goes to the target that answered last, then the announced leader, then the rest;
UNAVAILABLE or a deadline (a dead replica, a shadow answering not_leader) moves to the next one
within the same call, and only when none answered is the call unavailable (the retry tactic's).

``capacity()`` asks ``GetFactoryCapacity`` the same way (a read: a shadow answers it too, no fence sent).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from forge_core import ComponentContext, Envelope

from forge_sched.grpc.codes import REFUSED, RETRYABLE, status_name, status_number
from forge_sched.grpc.errors import StatusReportRejected, StatusReportUnavailable
from forge_sched.grpc.metadata import fence_metadata
from forge_sched.orders.status import FactoryCapacity
from forge_sched.proto import factory_status_pb2 as pb
from forge_sched.proto.factory_status_pb2_grpc import FactoryStatusServiceStub
from forge_sched.settings import GrpcStatusReporterSettings

__all__ = ["ENDPOINT", "GrpcStatusReporter", "ReportResult"]

#: The order scheduler's announcement of where a replica answers (schema in forge_sched/schemas).
ENDPOINT = "sched.endpoint"


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
        self._channels: dict[str, tuple[grpc.aio.Channel, Any]] = {}
        #: instance -> (gRPC target, leading, epoch) from the newest sched.endpoint of each replica
        self.announced: dict[str, tuple[str, bool, int]] = {}
        self._last_good: str | None = None
        self._listening: set[str] = set()

    @property
    def target(self) -> str:
        """The target tried first ("" while none is known)."""
        return next(iter(self.candidates()), "")

    def candidates(self) -> list[str]:
        """Targets in the order a call tries them: the last that answered, the announced leader(s)
        (newest epoch first), the other announced replicas, then ``target`` and ``targets``."""
        announced = sorted(self.announced.values(), key=lambda a: (not a[1], -a[2]))
        order = [*([self._last_good] if self._last_good else []), *(a[0] for a in announced),
                 *self.settings.static_targets()]
        return list(dict.fromkeys(order))

    async def start(self, ctx: ComponentContext) -> None:
        """Listen for ``sched.endpoint`` on ``endpoints_topic`` (once per component; not shared, so every
        replica of the caller hears every announcement)."""
        topic = self.settings.endpoints_topic
        if topic is not None and ctx.name not in self._listening:
            self._listening.add(ctx.name)
            await ctx.subscribe(topic, self._on_endpoint, types=[ENDPOINT], shared=False)

    async def _on_endpoint(self, envelope: Envelope) -> None:
        body = envelope.payload if isinstance(envelope.payload, dict) else {}
        instance, target, epoch = body.get("instance"), body.get("grpc"), body.get("epoch")
        if not isinstance(instance, str) or not isinstance(target, str) or not target:
            return
        self.announced[instance] = (target, bool(body.get("leading")), epoch if isinstance(epoch, int) else 0)

    def _open(self, target: str) -> Any:
        if target not in self._channels:
            s = self.settings
            backoff_ms = int(s.reconnect_backoff_max * 1000)
            options = [("grpc.max_reconnect_backoff_ms", backoff_ms),
                       ("grpc.initial_reconnect_backoff_ms", min(100, backoff_ms)),
                       ("grpc.min_reconnect_backoff_ms", min(100, backoff_ms))]
            if s.tls:
                channel = grpc.aio.secure_channel(target, self._credentials(), options=options)
            else:
                channel = grpc.aio.insecure_channel(target, options=options)
            self._channels[target] = (channel, FactoryStatusServiceStub(channel))
        return self._channels[target][1]

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
        targets = self.candidates()
        if not targets:
            raise StatusReportUnavailable("UNAVAILABLE", f"no PMS known yet (no sched.endpoint heard on "
                                                         f"{self.settings.endpoints_topic})")
        failures: list[tuple[str, str, str]] = []  # (target, code, detail)
        for target in targets:
            try:
                response = await self._open(target).ReportFactoryStatus(
                    request, timeout=self.settings.timeout, metadata=fence_metadata(epoch, lease))
            except grpc.aio.AioRpcError as exc:
                code, detail = exc.code(), exc.details() or ""
                if code in REFUSED:
                    self._last_good = target
                    return ReportResult(False, detail, 0, code.name)
                if code not in RETRYABLE:
                    raise StatusReportRejected(code.name, detail, target=target) from None
                failures.append((target, code.name, detail))
                if self._last_good == target:
                    self._last_good = None
                continue
            self._last_good = target
            return ReportResult(response.accepted, response.detail, response.orders_moved)
        if len(failures) == 1:
            target, code_name, detail = failures[0]
            raise StatusReportUnavailable(code_name, detail, target=target)
        raise StatusReportUnavailable("UNAVAILABLE", "no target answered: " + "; ".join(
            f"{target} {code_name} {detail}" for target, code_name, detail in failures))

    async def capacity(self) -> list[FactoryCapacity]:
        """Every factory's capacity, load and free capacity (``GetFactoryCapacity``), from the first
        target that answers; raises as :meth:`report` does when none does (no refusal: it is a read)."""
        targets = self.candidates()
        if not targets:
            raise StatusReportUnavailable("UNAVAILABLE", f"no PMS known yet (no sched.endpoint heard on "
                                                         f"{self.settings.endpoints_topic})")
        failures: list[tuple[str, str, str]] = []
        for target in targets:
            try:
                response = await self._open(target).GetFactoryCapacity(pb.CapacityRequest(),
                                                                       timeout=self.settings.timeout)
            except grpc.aio.AioRpcError as exc:
                code, detail = exc.code(), exc.details() or ""
                if code not in RETRYABLE:
                    raise StatusReportRejected(code.name, detail, target=target) from None
                failures.append((target, code.name, detail))
                continue
            return [FactoryCapacity(f.factory_id, status_name(f.status) or "UNSPECIFIED", f.capacity, f.load, f.free)
                    for f in response.factories]
        if len(failures) == 1:
            target, code_name, detail = failures[0]
            raise StatusReportUnavailable(code_name, detail, target=target)
        raise StatusReportUnavailable("UNAVAILABLE", "no target answered: " + "; ".join(
            f"{target} {code_name} {detail}" for target, code_name, detail in failures))

    async def aclose(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel, _ in channels:
            await channel.close()
