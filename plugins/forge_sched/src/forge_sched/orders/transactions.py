"""One database transaction, retried on a deadlock or serialization failure (the core retry tactic).

PostgreSQL runs each transaction at SERIALIZABLE: a concurrent writer (the other replica
creating an order, a second status report) makes one of two transactions fail with SQLSTATE
40001 (or 40P01 for a deadlock) instead of silently interleaving; the loser is run again from
the start, up to ``max_attempts`` times. SQLite serialises writers itself; ``database is
locked`` is retried the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from forge_core.tactics import RetryPolicy
from sqlalchemy import Connection, Engine

__all__ = ["RETRYABLE_SQLSTATES", "Conflict", "Transactor", "is_retryable"]

T = TypeVar("T")

#: serialization_failure, deadlock_detected
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


class Conflict(Exception):
    """A transaction lost to a concurrent one (serialization failure, deadlock, locked SQLite)."""


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` (a SQLAlchemy DBAPIError) is a conflict that the same work may win when run again."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in RETRYABLE_SQLSTATES:
        return True
    return isinstance(exc, sa.exc.OperationalError) and "database is locked" in str(orig)


class Transactor:
    """Runs ``work(conn)`` in one transaction; ``policy`` retries it on :class:`Conflict`."""

    def __init__(self, engine: Engine, policy: RetryPolicy) -> None:
        self.engine = engine.execution_options(isolation_level="SERIALIZABLE") \
            if engine.dialect.name == "postgresql" else engine
        self.policy = policy
        #: Conflicts seen (each one retried or, after the last attempt, raised).
        self.conflicts = 0

    def _once(self, work: Callable[[Connection], T]) -> T:
        try:
            with self.engine.begin() as conn:
                return work(conn)
        except sa.exc.DBAPIError as exc:
            if is_retryable(exc):
                self.conflicts += 1
                raise Conflict(str(exc.orig).strip().splitlines()[0]) from exc
            raise

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` in a transaction, run again (after the policy's backoff, on its clock) when it
        lost to a concurrent one; the last :class:`Conflict` escapes after ``max_attempts``."""

        async def attempt() -> T:
            return self._once(work)

        return await self.policy.acall(attempt)
