"""Fenced state handover: what a leader persists and its successor loads (memory, SQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forge_core.clock import Clock, RealClock
from forge_core.errors import ForgeError
from forge_core.storage.engine import create_tables
from forge_core.storage.tables import kv_table
from forge_core.tactics.leader.lease import StaleEpoch

__all__ = ["MemoryStateStore", "SqlStateStore", "StateStore"]


@runtime_checkable
class StateStore(Protocol):
    """Fenced key/value state: what a leader persists and its successor loads."""

    async def save(self, key: str, value: dict[str, Any], *, epoch: int) -> None:
        """Store ``value``; raises :class:`StaleEpoch` if a newer epoch already wrote ``key``."""

    async def load(self, key: str) -> dict[str, Any] | None:
        """The last saved value, or None."""


class MemoryStateStore:
    """Fenced state in a dict (tests, embedded runs without persistence)."""

    def __init__(self) -> None:
        # kept as JSON text, as the SQL store keeps it: a save copies (and refuses what JSON cannot
        # hold) with one dumps; the parse waits for a load, which is rare (a successor's start)
        self._data: dict[str, tuple[int, str]] = {}

    async def save(self, key: str, value: dict[str, Any], *, epoch: int) -> None:
        stored = self._data.get(key)
        if stored is not None and epoch < stored[0]:
            raise StaleEpoch(
                f"state {key!r}: write from epoch {epoch} refused, epoch {stored[0]} already wrote it"
            )
        self._data[key] = (epoch, json.dumps(value))

    async def load(self, key: str) -> dict[str, Any] | None:
        stored = self._data.get(key)
        return json.loads(stored[1]) if stored else None

    async def epoch_of(self, key: str) -> int | None:
        stored = self._data.get(key)
        return stored[0] if stored else None


class SqlStateStore:
    """Fenced state in ``forge_kv`` rows of one ``namespace``.

    ``value`` holds ``{"epoch": n, "data": {...}}`` as JSON: the table has no epoch column, so the
    fence lives in the document. A save is a compare-and-swap (``UPDATE ... WHERE value = <what
    was read>``) retried on conflict, so two writers can never both pass the epoch check; an
    INSERT's primary-key clash means a concurrent first write, and is retried the same way.
    """

    def __init__(
        self, engine: Engine, namespace: str, *, clock: Clock | None = None, create: bool = True
    ) -> None:
        self.engine = engine
        self.namespace = namespace
        self.clock = clock or RealClock()
        self.table = kv_table
        if create:  # the core migration creates it too; this serves stores used without migrations
            create_tables(engine, [kv_table])

    def _read(self, conn: sa.Connection, key: str) -> str | None:
        t = self.table
        return conn.execute(
            sa.select(t.c.value).where(t.c.namespace == self.namespace, t.c.key == key)
        ).scalar()

    def _save(self, key: str, value: dict[str, Any], epoch: int) -> None:
        t = self.table
        doc = json.dumps({"epoch": epoch, "data": value}, sort_keys=True, separators=(",", ":"))
        stamp = datetime.fromtimestamp(self.clock.time(), UTC)
        for _ in range(20):
            with self.engine.begin() as conn:
                old = self._read(conn, key)
                if old is not None:
                    stored_epoch = int(json.loads(old)["epoch"])
                    if epoch < stored_epoch:
                        raise StaleEpoch(
                            f"state {self.namespace}/{key}: write from epoch {epoch} refused, "
                            f"epoch {stored_epoch} already wrote it"
                        )
                    res = conn.execute(
                        sa.update(t)
                        .where(t.c.namespace == self.namespace, t.c.key == key, t.c.value == old)
                        .values(value=doc, updated_at=stamp)
                    )
                    if res.rowcount == 1:
                        return
                    continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        sa.insert(t).values(namespace=self.namespace, key=key, value=doc, updated_at=stamp)
                    )
                return
            except sa.exc.IntegrityError:
                continue
        raise ForgeError(f"state {self.namespace}/{key}: gave up after 20 conflicting concurrent writes")

    def _load(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            raw = self._read(conn, key)
        return None if raw is None else json.loads(raw)["data"]

    async def save(self, key: str, value: dict[str, Any], *, epoch: int) -> None:
        self._save(key, value, epoch)

    async def load(self, key: str) -> dict[str, Any] | None:
        return self._load(key)

    async def epoch_of(self, key: str) -> int | None:
        with self.engine.connect() as conn:
            raw = self._read(conn, key)
        return None if raw is None else int(json.loads(raw)["epoch"])
