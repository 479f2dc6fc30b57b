"""The lease: what a backend grants, the protocol every backend implements, and the errors of
leader election (:class:`NotLeader`, :class:`StaleEpoch`, :class:`LeaseBackendUnavailable`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from forge_core.errors import ForgeError

__all__ = ["GRANT_HISTORY", "Grant", "Lease", "LeaseBackend", "LeaseBackendUnavailable", "NotLeader", "StaleEpoch"]

#: Grants a backend keeps per lease (the newest): one per change of holder, so thousands of
#: failovers. Older grants are forgotten; :meth:`LeaseBackend.grants` lists what is kept.
GRANT_HISTORY = 10_000


class NotLeader(ForgeError):
    """A leader-only action was attempted by an elector that does not hold the lease."""


class StaleEpoch(ForgeError):
    """A fenced write came from an epoch older than the one already stored."""


class LeaseBackendUnavailable(ForgeError):
    """The lease backend could not be reached; the caller should retry (it is not a verdict)."""


@dataclass(frozen=True)
class Lease:
    """A granted lease: who holds it, under which epoch (fencing token), until when."""

    holder: str
    epoch: int
    expires_at: float


@dataclass(frozen=True)
class Grant:
    """One grant of a lease under a new epoch: to whom, and when (the caller's clock reading; Redis: its
    own ``TIME``). A holder re-acquiring or renewing its live lease is not a new grant."""

    epoch: int
    holder: str
    at: float


@runtime_checkable
class LeaseBackend(Protocol):
    """Where leases live. ``now`` is the caller's clock reading (ignored by Redis)."""

    async def try_acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        """Grant ``name`` to ``holder`` if free or expired (new epoch); extend it if already theirs."""

    async def renew(self, name: str, holder: str, epoch: int, ttl: float, now: float) -> Lease | None:
        """Extend the lease if ``holder`` still holds it under ``epoch`` and it has not expired."""

    async def release(self, name: str, holder: str, epoch: int) -> None:
        """Give the lease up at once if ``holder`` holds it under ``epoch``."""

    async def current(self, name: str, now: float) -> Lease | None:
        """The live lease on ``name``, or None if free or expired."""

    async def grants(self, name: str, after: int = 0) -> list[Grant]:
        """Every epoch ever granted on ``name`` (the newest :data:`GRANT_HISTORY`), oldest first:
        what a check compares the epochs receivers accepted with. ``after``: only the epochs above
        it, so a reader polling the history reads what is new, not all of it again."""
