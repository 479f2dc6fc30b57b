"""What travels between the proto and the order scheduler: status names and result codes."""

from __future__ import annotations

from typing import Final

import grpc

from forge_sched.proto import factory_status_pb2 as pb

__all__ = ["REFUSED", "RETRYABLE", "STATUS_NAMES", "grpc_code", "status_name", "status_number"]

#: proto enum number → the scheduler's status name (UNSPECIFIED is not a status).
STATUS_NAMES: Final[dict[int, str]] = {int(pb.UP): "UP", int(pb.DEGRADED): "DEGRADED", int(pb.DOWN): "DOWN"}

#: The scheduler's result code → the gRPC status the servicer answers with.
_CODES: Final = {
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "stale_epoch": grpc.StatusCode.FAILED_PRECONDITION,
    "not_leader": grpc.StatusCode.UNAVAILABLE,   # a shadow scheduler: the reporter retries, finds the leader
    "unavailable": grpc.StatusCode.UNAVAILABLE,  # storage down: retry
}

#: Codes that are the PMS's answer to this report (a refusal): a result, not an error.
REFUSED: Final = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION})

#: Codes a reporter retries (the call may succeed later); every other failure is final.
RETRYABLE: Final = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                              grpc.StatusCode.ABORTED, grpc.StatusCode.RESOURCE_EXHAUSTED})


def status_name(number: int) -> str | None:
    """``"UP"``/``"DEGRADED"``/``"DOWN"`` for the enum number, None for UNSPECIFIED or unknown."""
    return STATUS_NAMES.get(number)


def status_number(name: str) -> pb.FactoryStatus:
    """The enum value of a status name; ValueError names the accepted ones."""
    if name not in STATUS_NAMES.values():
        raise ValueError(f"status must be one of {', '.join(STATUS_NAMES.values())}, got {name!r}")
    return pb.FactoryStatus.Value(name)  # type: ignore[return-value]  # the stubs type Value() as int


def grpc_code(code: str) -> grpc.StatusCode:
    """The gRPC status for a non-ok result code of the scheduler (unknown codes: INTERNAL)."""
    return _CODES.get(code, grpc.StatusCode.INTERNAL)
