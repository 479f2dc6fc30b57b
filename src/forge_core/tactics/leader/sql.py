"""The SQL lease backend: SQLite/PostgreSQL via SQLAlchemy, times from the caller's clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forge_core.storage.engine import create_tables
from forge_core.tactics.leader.lease import GRANT_HISTORY, Grant, Lease, LeaseBackendUnavailable

__all__ = ["SqlLeaseBackend"]


def _lease_table(metadata: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("holder", sa.String(256), nullable=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.Float(precision=53), nullable=False),
    )


def _grants_table(metadata: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("epoch", sa.BigInteger, primary_key=True),
        sa.Column("holder", sa.String(256), nullable=False),
        sa.Column("granted_at", sa.Float(precision=53), nullable=False),
    )


class SqlLeaseBackend:
    """One row per lease, changed only by conditional UPDATEs, so the database arbitrates.

    Acquire is ``UPDATE ... WHERE name=? AND (holder IS NULL OR expires_at <= now OR holder=?)``
    (PostgreSQL re-checks the WHERE after a concurrent writer commits, SQLite serialises
    writers), and an INSERT on first use whose primary-key clash means another process won the
    race. Times are the caller's clock readings, so this backend works under virtual time.

    The table (default ``forge_leases``: name varchar(128) PK, holder varchar(256) NULL,
    epoch bigint, expires_at double) is created if missing; a migration may create it instead.
    Every grant under a new epoch is also written, in the same transaction, to
    ``<table>_grants`` (name varchar(128), epoch bigint, PK(name, epoch), holder varchar(256),
    granted_at double), which keeps the newest ``history`` grants per lease (:meth:`grants`).
    Calls block the event loop for one short transaction (pass ``offload=True`` on a real clock
    to run them in a worker thread).
    """

    def __init__(
        self, engine: Engine, *, table: str = "forge_leases", create: bool = True, offload: bool = False,
        history: int = GRANT_HISTORY,
    ) -> None:
        self.engine = engine
        self.metadata = sa.MetaData()
        self.table = _lease_table(self.metadata, table)
        self.grants_table = _grants_table(self.metadata, f"{table}_grants")
        self.history = history
        self.offload = offload
        if create:
            create_tables(engine, [self.table, self.grants_table])  # two schedulers may start at the same moment

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            if self.offload:
                return await asyncio.to_thread(fn, *args)
            return fn(*args)
        except sa.exc.OperationalError as exc:
            raise LeaseBackendUnavailable(
                f"lease table {self.table.name!r} at {self.engine.url.render_as_string()}: {exc.orig}"
            ) from exc

    def _row_lease(self, row: Any) -> Lease:
        return Lease(row.holder, int(row.epoch), float(row.expires_at))

    def _acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        t = self.table
        stmt = (
            sa.update(t)
            .where(t.c.name == name)
            .where(sa.or_(t.c.holder.is_(None), t.c.expires_at <= now, t.c.holder == holder))
            .values(
                epoch=sa.case(
                    (sa.and_(t.c.holder == holder, t.c.expires_at > now), t.c.epoch),
                    else_=t.c.epoch + 1,
                ),
                holder=holder,
                expires_at=now + ttl,
            )
            .returning(t.c.holder, t.c.epoch, t.c.expires_at)
        )
        for _ in range(3):
            with self.engine.begin() as conn:
                row = conn.execute(stmt).first()
                if row is not None:
                    lease = self._row_lease(row)
                    self._record_grant(conn, name, lease, now)
                    return lease
                exists = conn.execute(sa.select(t.c.name).where(t.c.name == name)).first()
                if exists is not None:
                    return None  # held by someone else
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.insert(t).values(name=name, holder=holder, epoch=1, expires_at=now + ttl))
                    self._record_grant(conn, name, Lease(holder, 1, now + ttl), now)
                return Lease(holder, 1, now + ttl)
            except sa.exc.IntegrityError:
                continue  # another process inserted first: re-run the conditional UPDATE
        return None

    def _record_grant(self, conn: sa.Connection, name: str, lease: Lease, now: float) -> None:
        """In the granting transaction (which holds the lease row's lock): a new epoch is a grant; a
        holder re-acquiring its live lease keeps its epoch, already recorded."""
        g = self.grants_table
        known = conn.execute(sa.select(g.c.epoch).where(g.c.name == name, g.c.epoch == lease.epoch)).first()
        if known is not None:
            return
        conn.execute(sa.insert(g).values(name=name, epoch=lease.epoch, holder=lease.holder, granted_at=now))
        # Epochs rise by one per grant, so this keeps the newest `history` of them.
        conn.execute(sa.delete(g).where(g.c.name == name, g.c.epoch <= lease.epoch - self.history))

    def _grants(self, name: str, after: int) -> list[Grant]:
        g = self.grants_table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(g).where(g.c.name == name, g.c.epoch > after).order_by(g.c.epoch)).all()
        return [Grant(int(r.epoch), r.holder, float(r.granted_at)) for r in rows]

    def _renew(self, name: str, holder: str, epoch: int, ttl: float, now: float) -> Lease | None:
        t = self.table
        stmt = (
            sa.update(t)
            .where(t.c.name == name, t.c.holder == holder, t.c.epoch == epoch, t.c.expires_at > now)
            .values(expires_at=now + ttl)
            .returning(t.c.holder, t.c.epoch, t.c.expires_at)
        )
        with self.engine.begin() as conn:
            row = conn.execute(stmt).first()
        return self._row_lease(row) if row is not None else None

    def _release(self, name: str, holder: str, epoch: int) -> None:
        t = self.table
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.name == name, t.c.holder == holder, t.c.epoch == epoch)
                .values(holder=None, expires_at=0.0)
            )

    def _current(self, name: str, now: float) -> Lease | None:
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.name == name)).first()
        if row is None or row.holder is None or row.expires_at <= now:
            return None
        return self._row_lease(row)

    async def try_acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        return await self._run(self._acquire, name, holder, ttl, now)

    async def renew(self, name: str, holder: str, epoch: int, ttl: float, now: float) -> Lease | None:
        return await self._run(self._renew, name, holder, epoch, ttl, now)

    async def release(self, name: str, holder: str, epoch: int) -> None:
        await self._run(self._release, name, holder, epoch)

    async def current(self, name: str, now: float) -> Lease | None:
        return await self._run(self._current, name, now)

    async def grants(self, name: str, after: int = 0) -> list[Grant]:
        return await self._run(self._grants, name, after)
