"""The status report's contract: one method takes UP/DEGRADED/DOWN for a factory, from gRPC and
from the bus alike (see the industry40 contract), and one answers the capacity query (every
factory's capacity, load and free capacity). No grpc import here: the servicer imports this."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from forge_sched.orders.tables import FACTORY_STATUSES

__all__ = ["FACTORY_ID", "FactoryCapacity", "StatusHandler", "StatusReportResult", "invalid", "validate_report"]

Code = Literal["ok", "invalid_argument", "stale_epoch", "not_leader", "unavailable"]

#: A factory id: what an MQTT topic level can carry, and short enough for the tables.
FACTORY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


@dataclass(frozen=True)
class StatusReportResult:
    """What a status report did. ``code`` maps to gRPC (invalid_argument → INVALID_ARGUMENT,
    stale_epoch → FAILED_PRECONDITION, not_leader/unavailable → UNAVAILABLE); ``field`` names
    the input at fault for invalid_argument."""

    accepted: bool
    detail: str
    orders_moved: int = 0
    code: Code = "ok"
    field: str | None = None


@dataclass(frozen=True)
class FactoryCapacity:
    """One factory as the capacity query answers it (``GET /factories``'s figures): ``free`` is
    ``capacity - load``, ``load`` the orders it holds (assigned or in progress)."""

    factory_id: str
    status: str
    capacity: int
    load: int
    free: int


class StatusHandler(Protocol):
    """What the gRPC servicer and the bus request call (``sched.order_scheduler`` implements it)."""

    async def report_factory_status(self, factory_id: str, status: str, reason: str,
                                    epoch: int | None, lease: str | None) -> StatusReportResult: ...

    async def factory_capacity(self) -> list[FactoryCapacity]:
        """Every factory's capacity, by id; a read any replica answers (raises when storage cannot be read)."""
        ...


def invalid(field: str, detail: str) -> StatusReportResult:
    return StatusReportResult(False, detail, 0, "invalid_argument", field)


def validate_report(factory_id: object, status: object, reason: object, epoch: object,
                    lease: object) -> StatusReportResult | None:
    """None if the report is well formed, else the invalid_argument result naming the field."""
    if not isinstance(factory_id, str) or not factory_id:
        return invalid("factory_id", "factory_id is required (a non-empty string)")
    if not FACTORY_ID.match(factory_id):
        return invalid("factory_id", f"factory_id {factory_id[:120]!r} is not an id: letters, digits and ._:- "
                                     "(first a letter or digit), at most 100 characters")
    if status not in FACTORY_STATUSES:
        return invalid("status", f"status must be one of {', '.join(FACTORY_STATUSES)}, got {status!r}")
    if not isinstance(reason, str) or len(reason) > 2000:
        return invalid("reason", "reason must be a string of at most 2000 characters")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0):
        return invalid("epoch", f"epoch must be a non-negative integer, got {epoch!r}")
    if lease is not None and (not isinstance(lease, str) or not 0 < len(lease) <= 150):
        return invalid("lease", f"lease must be a non-empty string of at most 150 characters, got {lease!r}")
    return None
