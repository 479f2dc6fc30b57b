"""Writes of the factory monitor: beats in batches, status rows, failover events; retention.

Beats arrive at 1/s per factory, so they are buffered and written in one transaction per flush.
Under a real clock every database call runs in a worker thread (``asyncio.to_thread``), one at a
time, so the event loop never waits on the database; under a virtual clock (simulation, tests),
whose loop cannot be woken by threads, they run inline. A failing database is logged and counted,
never raised into the monitor: unwritten beats stay buffered up to ``max_buffered`` (the oldest are
then dropped and counted), and the next flush tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from forge_core.storage import DriverStatement, driver_cursor
from sqlalchemy import Connection, Engine

from forge_mms.monitoring.beats import Beat
from forge_mms.storage.tables import factory_status, failover_events, heartbeats

__all__ = ["BEAT_COLUMNS", "MonitorStore", "beat_values"]

T = TypeVar("T")
log = logging.getLogger("forge_mms.storage")

# Built once: a statement built per call costs SQLAlchemy about as much as running it (coercion and
# the cache key).
_DELETE_BEFORE = heartbeats.delete().where(
    heartbeats.c.received_at < sa.bindparam("cutoff", type_=heartbeats.c.received_at.type))
#: The columns of a written beat, in the order of :func:`beat_values`. The flush, the status row's upsert
#: and the failover event run on the driver's cursor (forge_core's ``DriverStatement``: compiled once per
#: dialect, positional parameters), not through ``conn.execute``: SQLAlchemy's per-execution work (cache
#: key, parameter processing, events, a result) cost as much as SQLite's own for these one-row statements
#: and ~40-row batches. The beats are tuples in this order, bound as they are: every column a number, a
#: string or a bool, which the drivers bind as SQLAlchemy would (SQLite's bool given as its int 0/1).
BEAT_COLUMNS = ("factory_id", "timestamp", "received_at", "cpu", "memory", "errors", "latency_ms", "failed")
_INSERT_BEATS = DriverStatement("mms heartbeats insert", heartbeats.insert(), columns=BEAT_COLUMNS,
                                fields=BEAT_COLUMNS, typed=False)


def beat_values(beat: Beat) -> tuple[Any, ...]:
    """``beat``'s row of ``heartbeats``, the values of :data:`BEAT_COLUMNS` in that order."""
    return (beat.factory, beat.timestamp, beat.at, beat.cpu, beat.memory, beat.errors, beat.latency_ms,
            beat.new_errors > 0 or beat.late)


class MonitorStore:
    """``keep_connection`` (the monitor sets it under a virtual clock only): the writes use one connection
    kept between them instead of a pool checkout each, which pings the database (``pool_pre_ping``) and
    rolls back at checkin: as much CPU as a status row's upsert on SQLite. Each write still commits when it
    returns; :meth:`close` (the monitor's stop, or its kill) gives the connection back to the pool."""

    def __init__(self, engine: Callable[[], Engine] | None, *, offload: bool, batch_size: int,
                 max_buffered: int | None = None, keep_connection: bool = False) -> None:
        self._engine = engine or _no_engine
        self.enabled = engine is not None  # False: the runtime has no storage; every write is skipped
        self.offload = offload
        self.keep_connection = keep_connection
        self._kept: Connection | None = None
        self.batch_size = batch_size
        self.max_buffered = max_buffered or 20 * batch_size
        self._buffer: deque[Beat] = deque()  # made rows only when written (a follower trims most unwritten)
        self._lock = asyncio.Lock()
        #: One flush at a time: two (the flush timer and a full batch, or stop()) each took the same first
        #: rows before the write lock, wrote them twice and popped twice as many (IndexError, or beats
        #: never written dropped from the buffer) when the writes were off the loop (a real clock).
        self._flushing = asyncio.Lock()
        self.stats = {"beats_written": 0, "beats_dropped": 0, "beats_pruned": 0, "beats_already_written": 0,
                      "errors": 0}

    # -- beats ------------------------------------------------------------------------------
    def add_beat(self, beat: Beat) -> bool:
        """Buffer ``beat``; True when a batch is full (flush now)."""
        if not self.enabled:
            return False
        if len(self._buffer) >= self.max_buffered:
            self._buffer.popleft()
            self.stats["beats_dropped"] += 1
        self._buffer.append(beat)
        return len(self._buffer) >= self.batch_size

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def flush(self) -> int:
        """Write what is buffered, a batch per transaction; the number written."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        written = 0
        while self._buffer:
            batch = list(itertools.islice(self._buffer, self.batch_size))
            if not await self._call(self._insert_beats, batch):
                break
            for _ in batch:
                self._buffer.popleft()
            written += len(batch)
        self.stats["beats_written"] += written
        return written

    def trim(self, cutoff: float) -> int:
        """A follower's buffer: forget beats received before ``cutoff`` (the leader wrote them; the
        newer ones are kept for a handover, see :meth:`catch_up`). The number forgotten."""
        gone = 0
        while self._buffer and self._buffer[0].at < cutoff:
            self._buffer.popleft()
            gone += 1
        return gone

    async def catch_up(self, margin: float) -> int:
        """A new leader's buffer: drop the beats its predecessor already wrote -- per factory, those
        received up to ``margin`` s after the newest beat in the table (two replicas hear one beat
        within far less than an interval, and the next beat comes an interval later) -- so the
        beats of the handover, heard by this replica while no replica led, are written once. The
        number left to write."""
        if not self.enabled or not self._buffer:
            return len(self._buffer)
        newest = await self._call(self._load_newest, sorted({b.factory for b in self._buffer}))
        if newest is None:
            return len(self._buffer)  # the database failed: writing a few beats twice beats losing them
        keep = deque(b for b in self._buffer if b.at > newest.get(b.factory, -math.inf) + margin)
        self.stats["beats_already_written"] += len(self._buffer) - len(keep)
        self._buffer = keep
        return len(keep)

    async def prune(self, cutoff: float) -> int:
        """Delete beats received before ``cutoff`` (epoch s)."""
        deleted = await self._call(self._delete_before, cutoff)
        self.stats["beats_pruned"] += deleted or 0
        return deleted or 0

    # -- status and events --------------------------------------------------------------------
    async def save_status(self, factory: str, values: dict[str, Any], event: dict[str, Any] | None = None) -> None:
        """Upsert ``factory``'s status row; with ``event``, insert that failover event in the same
        transaction (a report's end writes both: one commit instead of two)."""
        await self._call(self._upsert_status, factory, values, event)

    async def add_event(self, row: dict[str, Any]) -> None:
        await self._call(self._insert_event, row)

    async def known(self) -> dict[str, str]:
        """Every factory of ``factory_status`` with its last status (what a restarted monitor knew)."""
        return await self._call(self._load_known) or {}

    async def reported(self) -> dict[str, str]:
        """The last status the PMS accepted, per factory (what a new leader need not report again)."""
        return await self._call(self._load_reported) or {}

    def close(self) -> None:
        """Give the kept connection back to the pool and keep none from now on. Idempotent."""
        self.keep_connection = False
        self._drop()

    def _drop(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            with contextlib.suppress(Exception):
                kept.close()

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A connection in a transaction committed at the end: the kept one, or one from the pool."""
        if not self.keep_connection:
            with self._engine().begin() as pooled:
                yield pooled
            return
        conn = self._kept
        if conn is None or conn.closed or conn.invalidated:
            conn = self._kept = self._engine().connect()
        try:
            with conn.begin():
                yield conn
        except BaseException:
            self._drop()  # a failure may have left it unusable: the next write takes a fresh one
            raise

    # -- in the worker thread (or inline) ----------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any) -> T | None:
        if not self.enabled:
            return None
        async with self._lock:
            try:
                if self.offload:
                    return await asyncio.to_thread(fn, *args)
                return fn(*args)
            except sa.exc.SQLAlchemyError as exc:
                self.stats["errors"] += 1
                log.warning("mms storage: %s failed: %s", getattr(fn, "__name__", fn), exc)
                return None

    def _insert_event(self, event: dict[str, Any]) -> None:
        with self._begin() as conn, driver_cursor(conn) as cursor:
            _event_insert(tuple(event)).on(conn).execute(cursor, event)

    def _insert_beats(self, beats: list[Beat]) -> bool:
        with self._begin() as conn, driver_cursor(conn) as cursor:
            # beat_values' rows, built here in one pass (no call, and no second tuple for SQLite, per beat); a
            # Beat unpacks in its fields' order. SQLite gets failed as the 0/1 it stores: sqlite3 sends a bool
            # through its adapter lookup (~3.3 k instructions).
            if conn.dialect.name == "sqlite":
                rows = [(factory, timestamp, at, cpu, memory, errors, latency, 1 if new > 0 or late else 0)
                        for factory, at, timestamp, errors, new, _gap, late, cpu, memory, latency in beats]
            else:
                rows = [(factory, timestamp, at, cpu, memory, errors, latency, new > 0 or late)
                        for factory, at, timestamp, errors, new, _gap, late, cpu, memory, latency in beats]
            _INSERT_BEATS.on(conn).executemany(cursor, rows)
        return True

    def _delete_before(self, cutoff: float) -> int:
        with self._begin() as conn:
            return int(conn.execute(_DELETE_BEFORE, {"cutoff": cutoff}).rowcount or 0)

    def _upsert_status(self, factory: str, values: dict[str, Any], event: dict[str, Any] | None = None) -> None:
        update, insert = _status_statements(tuple(values))
        params = {f"b_{name}": value for name, value in values.items()}
        params["b_factory_id"] = factory
        with self._begin() as conn, driver_cursor(conn) as cursor:  # only the leader writes
            if not update.on(conn).execute(cursor, params).rowcount:  # update, else insert
                insert.on(conn).execute(cursor, params)
            if event is not None:
                _event_insert(tuple(event)).on(conn).execute(cursor, event)

    def _load_newest(self, factories: list[str]) -> dict[str, float]:
        t = heartbeats
        newest: dict[str, float] = {}
        with self._engine().connect() as conn:  # one index seek per factory (ix_heartbeats_factory_received)
            for factory in factories:
                at = conn.execute(sa.select(sa.func.max(t.c.received_at)).where(t.c.factory_id == factory)).scalar()
                if at is not None:
                    newest[factory] = float(at)
        return newest

    def _load_known(self) -> dict[str, str]:
        t = factory_status
        with self._engine().connect() as conn:
            return {row.factory_id: row.status for row in conn.execute(sa.select(t.c.factory_id, t.c.status))}

    def _load_reported(self) -> dict[str, str]:
        t = factory_status
        with self._engine().connect() as conn:
            rows = conn.execute(sa.select(t.c.factory_id, t.c.reported_status)
                                .where(t.c.reported_status.is_not(None))).all()
        return {row.factory_id: row.reported_status for row in rows}


@functools.cache
def _status_statements(columns: tuple[str, ...]) -> tuple[DriverStatement, DriverStatement]:
    """The status row's update and insert for these columns (parameters ``b_<column>``), built once per
    set of columns (a status or risk change writes one) and compiled once per dialect."""
    t = factory_status
    binds = {name: sa.bindparam(f"b_{name}", type_=t.c[name].type) for name in columns}
    key = sa.bindparam("b_factory_id", type_=t.c.factory_id.type)
    return (DriverStatement("mms factory_status update", t.update().where(t.c.factory_id == key).values(binds)),
            DriverStatement("mms factory_status insert", t.insert().values({"factory_id": key, **binds})))


@functools.cache
def _event_insert(columns: tuple[str, ...]) -> DriverStatement:
    """The failover event's insert of these columns (a row's keys), built once per set of columns."""
    return DriverStatement("mms failover_events insert", failover_events.insert(), columns=columns)


def _no_engine() -> Engine:
    raise RuntimeError("MonitorStore: no storage")
