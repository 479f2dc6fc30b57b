"""What a status report raises when the call itself failed, split by whether trying again can help.

A refusal (stale epoch, invalid report) is an answer, returned as ``ReportResult(accepted=False)``,
not raised. Both errors derive from forge_core's transport errors so a caller in another plugin
(forge_mms, which may not import forge_sched) can tell them apart with core types alone:
``RetryPolicy(retry_on=(TransportNotReady,))`` retries :class:`StatusReportUnavailable` and lets
:class:`StatusReportRejected` through at once.
"""

from __future__ import annotations

from forge_core import TransportError, TransportNotReady

__all__ = ["StatusReportError", "StatusReportRejected", "StatusReportUnavailable"]


class StatusReportError(TransportError):
    """A status report that did not go through; ``code`` is the gRPC status name."""

    retryable = False

    def __init__(self, code: str, detail: str, *, target: str = "") -> None:
        where = f" ({target})" if target else ""
        super().__init__(f"status_reporter.grpc{where}: {code}: {detail}")
        self.code = code
        self.detail = detail
        self.target = target


class StatusReportUnavailable(StatusReportError, TransportNotReady):
    """The PMS could not be reached or answered too late (UNAVAILABLE, DEADLINE_EXCEEDED, ...): retry."""

    retryable = True


class StatusReportRejected(StatusReportError):
    """The call failed in a way the same call will not fix (UNIMPLEMENTED: not a PMS at the target,
    INTERNAL, UNAUTHENTICATED, PERMISSION_DENIED, ...)."""
