"""Writes and reads of ``mms.sensor_processor``: one transaction per batch, warm-up reads, system events.

Every write is idempotent, so at-least-once delivery stores each reading once (effectively once):
readings ``ON CONFLICT (sensor_id, seq) DO NOTHING RETURNING`` (what comes back is what this transaction
stored), alerts ``ON CONFLICT (alert_id) DO NOTHING``, a clear updates only a raised alert, the sensor
row keeps the newest seq, and the per-minute rollups add only the readings this transaction inserted.
Rows are written in key order so two processors briefly sharing a sensor during a rebalance take their
(PostgreSQL) row locks in the same order; SQLite's readings go in the batch's order, unsorted (a write
locks the whole database, so no order deadlocks). SQLite and PostgreSQL (their INSERT ... ON CONFLICT).

Like :mod:`forge_mms.storage.store`, a call runs in a worker thread under a real clock (the event loop
never waits on the database), a transaction per batch; and inline under a virtual clock, one call at a
time, its writes sharing a transaction committed every ``group`` readings and before anyone else could
look (:class:`forge_core.storage.CommitGroup`). Unlike it, errors are raised: the processor decides
(retry, then hand the batch back to the transport).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

import sqlalchemy as sa
from forge_core.storage import CommitGroup, DriverSql, DriverSqlError, DriverStatement, driver_cursor
from sqlalchemy import Connection, Engine

from forge_mms.anomaly.alerts import ActiveAlert, AlertEvent
from forge_mms.anomaly.readings import Reading
from forge_mms.storage.sensor_copy import Stage
from forge_mms.storage.sensor_rows import by_sensor, first_of, rollup_rows, sensor_rows
from forge_mms.storage.sensor_tables import (
    Statements,
    alerts,
    reading_rollups,
    readings,
    sensors,
    system_events,
    upsert,
)

__all__ = ["SensorStore", "Warm", "minute_of", "recompute_rollups", "upsert"]

T = TypeVar("T")

#: a reading's key, ``(sensor_id, seq)``: the order rows are written in, and what a write returns
_key = attrgetter("sensor_id", "seq")
_anomaly = attrgetter("anomaly")


def minute_of(ts: float) -> int:
    return int(ts // 60) * 60


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Warm:
    """What storage knows of a sensor for its warm-up."""

    last_seq: int = 0
    history: list[Reading] = field(default_factory=list)  # oldest first
    active: dict[str, ActiveAlert] = field(default_factory=dict)  # rule -> its raised alert
    unpublished: list[dict[str, Any]] = field(default_factory=list)  # alert messages stored, not yet published


class SensorStore:
    """``group``: readings per transaction inline (a virtual clock); 1 is a commit per batch, as in real time."""

    def __init__(self, engine: Callable[[], Engine], *, offload: bool, processor: str, group: int = 1) -> None:
        self._engine = engine
        self.offload = offload
        self.processor = processor
        self._lock = asyncio.Lock()
        self._stage = Stage()  # PostgreSQL: a batch's rows by COPY into temp tables (sensor_copy)
        self._statements: dict[str, Statements] = {}  # per dialect name: built once, compiled once (cache)
        #: inline: the connection kept between calls and its transaction, shared by ``group`` readings; the
        #: sensors and rollups rows of its writes merged and written once, just before each COMMIT
        self._merged: dict[int, tuple[Sequence[Reading], list[Reading]]] = {}
        self.commits: CommitGroup | None = None if offload else CommitGroup(
            lambda: self._engine(), group, name=f"the sensor store of {processor}",
            before_commit=self._write_merged, after_commit=self._merged.clear)

    @property
    def _held(self) -> Connection | None:
        """The connection kept between inline calls (None: none yet, or given back)."""
        return self.commits.conn if self.commits is not None else None

    def _sql(self, conn: Connection) -> Statements:
        name = conn.dialect.name
        found = self._statements.get(name)
        if found is None:
            found = self._statements[name] = Statements.build(conn)
        return found

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if not self.offload:  # inline: a call runs to its end before the next begins
            return fn(*args)
        async with self._lock:
            return await asyncio.to_thread(fn, *args)

    def _write(self, write: Callable[..., T], *args: Any, readings: int = 0) -> T:
        """``write(conn, *args)`` in a transaction: its own under a real clock (a connection of the pool per
        call, in a worker thread, the pool's pre-ping); inline in the commit group's open one, on the
        connection it keeps (given back after any error: the next call takes a fresh one)."""
        try:
            if self.commits is not None:
                return self.commits.run(write, *args, units=readings)
            with self._engine().begin() as conn:
                return write(conn, *args)
        except BaseException:
            self._stage.forget()  # rolled back: PostgreSQL's temp table, if made in it, is gone
            raise

    def commit(self) -> None:
        """Commit the inline group's open transaction now (nothing under a real clock)."""
        if self.commits is not None:
            try:
                self.commits.commit()
            except BaseException:
                self._stage.forget()
                raise

    def close(self) -> None:
        """Commit the inline group and give its connection back (the processor stops)."""
        if self.commits is not None:
            self._stage.forget()  # its last COMMIT may fail: the temp table made again on the next use
            self.commits.close()

    # -- the batch ----------------------------------------------------------------------------
    def write_batch(self, batch: Sequence[Reading], events: Sequence[AlertEvent], stored_at: float) -> set[tuple[str, int]]:
        """Readings, sensors, alerts and rollups in one transaction; the (sensor_id, seq) it inserted."""
        return self._write(self._write_batch, batch, events, stored_at, readings=len(batch))

    def _write_batch(self, conn: Connection, batch: Sequence[Reading], events: Sequence[AlertEvent],
                     stored_at: float) -> set[tuple[str, int]]:
        sql = self._sql(conn)
        if len(batch) == 1 and sql.driver is not None:
            return self._write_one(conn, sql, sql.driver, batch, events, stored_at)
        inserted = self._insert_readings(conn, sql, batch, stored_at)
        # as many keys inserted as readings: every reading was new, and none came twice (the common case)
        fresh = list(batch) if len(inserted) == len(batch) else first_of(batch, inserted)
        if self.commits is not None:  # a commit group: its sensors and rollups rows written at its COMMIT
            if events:  # nearly every batch has none: no call and no two empty row lists
                self._write_alerts(conn, sql, events)
            self._merge(batch, fresh)
            return inserted
        per_sensor = by_sensor(batch)
        fresh_per_sensor = per_sensor if len(fresh) == len(batch) else by_sensor(fresh)
        self._upsert_sensors(conn, sql, per_sensor, fresh_per_sensor)
        if events:
            self._write_alerts(conn, sql, events)
        self._add_rollups(conn, sql, fresh_per_sensor)
        return inserted

    def _merge(self, batch: Sequence[Reading], fresh: list[Reading]) -> None:
        """Keep a written batch's sensors and rollups rows for the group's COMMIT (:meth:`_write_merged`). Keyed
        by the batch itself (kept alive here, so its id is not reused): a write the group runs again after a
        rollback replaces its own part, never adds it twice. Called last in a write: one that raised has none."""
        self._merged[id(batch)] = (batch, fresh)

    def _write_merged(self, conn: Connection) -> None:
        """The group's writes' sensors and rollups rows, merged (a row per sensor, a row per sensor and minute),
        in its transaction just before the COMMIT: what the upserts of each write would have left."""
        if not self._merged:
            return
        parts = list(self._merged.values())
        batch = [r for part, _fresh in parts for r in part]
        fresh = [r for _part, part in parts for r in part]
        sql = self._sql(conn)
        per_sensor = by_sensor(batch)
        # fresh is a part of batch in its order: as long, it is the same readings (every one inserted)
        fresh_per_sensor = per_sensor if len(fresh) == len(batch) else by_sensor(fresh)
        self._upsert_sensors(conn, sql, per_sensor, fresh_per_sensor)
        self._add_rollups(conn, sql, fresh_per_sensor)

    def _write_one(self, conn: Connection, sql: Statements, driver: dict[str, DriverSql], batch: Sequence[Reading],
                   events: Sequence[AlertEvent], stored_at: float) -> set[tuple[str, int]]:
        """A batch of one reading on SQLite (the memory bus without ``batch_wait``): the rows and statements of
        :meth:`_write_batch`, on one cursor, without its grouping and sorting."""
        r = batch[0]
        cursor = conn.connection.cursor()  # the DriverSql statements inline: three at most for every reading
        # no RETURNING: the rowcount says whether it inserted the row; no label: anomaly left out, NULL
        statement = driver["readings" if r.anomaly is not None else "readings_unlabelled"]
        row = (r.sensor_id, r.seq, r.kind, r.value, r.ts, stored_at, self.processor)
        try:
            cursor.execute(statement.sql, row if r.anomaly is None else (*row, r.anomaly))
            new = cursor.rowcount == 1
            grouped = self.commits is not None  # a commit group: sensors and rollups rows at its COMMIT
            if not grouped:
                statement = driver["sensors"]
                cursor.execute(statement.sql, statement.params({
                    "sensor_id": r.sensor_id, "kind": r.kind, "location": r.location, "unit": r.unit,
                    "first_seen": r.ts, "last_seen": r.ts, "last_seq": r.seq, "stored": 1 if new else 0}))
                if new:
                    statement = driver["rollups"]
                    cursor.execute(statement.sql, statement.params({
                        "sensor_id": r.sensor_id, "minute": minute_of(r.ts), "count": 1, "min": r.value,
                        "max": r.value, "sum": r.value}))
        except statement.dbapi_error as exc:
            raise statement.error(exc) from exc
        finally:
            cursor.close()
        if events:
            self._write_alerts(conn, sql, events)
        if grouped:
            self._merge(batch, [r] if new else [])
        return {(r.sensor_id, r.seq)} if new else set()

    def _insert_readings(self, conn: Connection, sql: Statements, batch: Sequence[Reading],
                         stored_at: float) -> set[tuple[str, int]]:
        if not batch:
            return set()
        if sql.driver is None:  # PostgreSQL: COPY, then an INSERT taking its row locks in key order (sensor_copy)
            return self._stage.insert(conn, batch, stored_at, self.processor)
        # SQLite: one single-row INSERT ... ON CONFLICT DO NOTHING per reading by executemany, no RETURNING (its
        # rows cost more than the insert: ~2 us a reading of a 9-row batch); the cursor's rowcount is how many
        # it inserted. All of them (the common case): the batch's keys. Fewer: see _inserted_last. In the
        # batch's order: SQLite locks the whole database for a write, so no order of rows can deadlock
        processor = self.processor
        if list(map(_anomaly, batch)).count(None) == len(batch):  # no label: anomaly left out (NULL), not bound
            values: list[tuple[Any, ...]] = [(r.sensor_id, r.seq, r.kind, r.value, r.ts, stored_at, processor)
                                             for r in batch]
            statement = sql.driver["readings_unlabelled"]
        else:
            values = [(r.sensor_id, r.seq, r.kind, r.value, r.ts, stored_at, processor, r.anomaly) for r in batch]
            statement = sql.driver["readings"]
        with driver_cursor(conn) as cursor:
            statement.executemany(cursor, values)
            added = cursor.rowcount
            keys = set(map(_key, batch))
            return keys if added == len(values) else _inserted_last(cursor, statement, added, keys)

    def _upsert_sensors(self, conn: Connection, sql: Statements, batch: dict[str, list[Reading]],
                        fresh: dict[str, list[Reading]]) -> None:
        """A row per sensor of the batch: the newest seq, and ``stored`` plus the readings it inserted."""
        rows = sensor_rows(batch, fresh)
        if rows:
            self._upsert(conn, sql, "sensors", rows)

    def _write_alerts(self, conn: Connection, sql: Statements, events: Sequence[AlertEvent]) -> None:
        raised = [{"alert_id": e.alert_id, "sensor_id": e.reading.sensor_id, "rule": e.rule, "type": e.type,
                   "severity": e.severity, "state": "raised", "value": e.verdict.value,
                   "threshold": e.verdict.threshold, "reading_seq": e.reading.seq, "raised_at": e.reading.ts,
                   "cleared_at": None, "cleared_seq": None, "processor": self.processor, "published": None}
                  for e in events if e.state == "raised"]
        if raised:
            conn.execute(sql.raise_alerts, sorted(raised, key=lambda row: str(row["alert_id"])))
        cleared = [{"b_id": e.alert_id, "b_at": e.reading.ts, "b_seq": e.reading.seq}
                   for e in events if e.state == "cleared"]
        if cleared:
            conn.execute(sql.clear_alerts, sorted(cleared, key=lambda row: str(row["b_id"])))

    def _add_rollups(self, conn: Connection, sql: Statements, fresh: dict[str, list[Reading]]) -> None:
        rows = rollup_rows(fresh)
        if rows:
            self._upsert(conn, sql, "rollups", rows)

    def _upsert(self, conn: Connection, sql: Statements, name: str, rows: list[dict[str, Any]]) -> None:
        """Statement ``name`` ("sensors", "rollups") for each row: SQLite's on the driver's cursor, PostgreSQL's
        by COPY and one INSERT (sensor_copy)."""
        if sql.driver is None:
            self._stage.upsert(conn, name, rows)
            return
        with driver_cursor(conn) as cursor:
            sql.driver[name].executemany(cursor, rows)

    def mark_published(self, marks: Sequence[tuple[str, str]]) -> None:
        """Remember which state of each alert is on the bus (``[(alert_id, state)]``)."""
        last = dict(marks)  # an alert raised and cleared in one batch: its clear is what is on the bus now
        if not last:
            return
        self._write(self._mark_published, [{"b_id": i, "b_state": last[i]} for i in sorted(last)])

    def _mark_published(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        conn.execute(self._sql(conn).mark_published, rows)

    # -- warm-up ------------------------------------------------------------------------------
    def load_warm(self, wanted: dict[str, int]) -> dict[str, Warm]:
        """Per sensor id: its last seq, its last ``wanted[id]`` readings, raised and unpublished alerts."""
        found = {sid: Warm() for sid in wanted}
        if not wanted:
            return found
        ids = sorted(wanted)
        with self._engine().connect() as conn:
            meta = {row.sensor_id: row for row in conn.execute(sa.select(sensors).where(sensors.c.sensor_id.in_(ids)))}
            for sid in ids:
                row = meta.get(sid)
                if row is None:
                    continue  # never stored: nothing to warm from
                warm = found[sid]
                warm.last_seq = int(row.last_seq)
                if wanted[sid] > 0:
                    recent = conn.execute(sa.select(readings).where(readings.c.sensor_id == sid)
                                          .order_by(readings.c.seq.desc()).limit(wanted[sid])).all()
                    warm.history = [Reading(sid, r.kind, row.location, int(r.seq), float(r.value), row.unit,
                                            float(r.ts), iso(float(r.ts)), r.anomaly) for r in reversed(recent)]
            rows = conn.execute(sa.select(alerts).where(
                alerts.c.sensor_id.in_(ids),
                sa.or_(alerts.c.state == "raised", alerts.c.published.is_(None), alerts.c.published != alerts.c.state))
                .order_by(alerts.c.reading_seq, alerts.c.alert_id)).all()
        for a in rows:
            warm = found[a.sensor_id]
            if a.state == "raised":
                warm.active[a.rule] = ActiveAlert(a.alert_id, a.severity, int(a.reading_seq))
            if a.published != a.state:
                row = meta.get(a.sensor_id)
                warm.unpublished.extend(_messages(a, row.kind if row else "", row.location if row else ""))
        return found

    # -- system events ------------------------------------------------------------------------
    def record_event(self, at: float, kind: str, source: str, detail: dict[str, Any]) -> None:
        self._write(_insert_event, at, kind, source, detail)


#: built once: ``insert().values(...)`` per row cost ~68 µs against ~15 µs for a prepared insert and a dict
_INSERT_EVENT = system_events.insert()


#: SQLite's, on the driver's cursor (a consumer_status row every 5 s: SQLAlchemy's execution cost ~3 % of a
#: simulated run); typed: the detail serialized by the JSON type's bind processor, as conn.execute does
_EVENT_SQLITE = DriverStatement("forge_mms sensor store: system_events", _INSERT_EVENT,
                                columns=("at", "kind", "source", "detail"))


def _insert_event(conn: Connection, at: float, kind: str, source: str, detail: dict[str, Any]) -> None:
    row = {"at": at, "kind": kind, "source": source, "detail": detail}
    if conn.dialect.name != "sqlite":
        conn.execute(_INSERT_EVENT, row)
        return
    with driver_cursor(conn) as cursor:
        _EVENT_SQLITE.on(conn).execute(cursor, row)


#: SQLite's largest rowid: a table holding it gives new rows random unused rowids, not the largest + 1
MAX_ROWID = 2**63 - 1

#: the rows an INSERT just added to ``readings``, newest first (``LIMIT``: how many it added)
_LAST_ROWS = "SELECT rowid, sensor_id, seq FROM readings ORDER BY rowid DESC LIMIT ?"


def _inserted_last(cursor: Any, statement: DriverSql, added: int, keys: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """The keys of the ``added`` rows the INSERT just run on ``cursor`` inserted into ``readings`` (fewer than
    its rows: some were stored already). A rowid table gives each new row the largest rowid + 1 while that is
    below :data:`MAX_ROWID` (https://www.sqlite.org/autoinc.html), and no other connection writes inside this
    transaction: the rows it added are the ``added`` newest by rowid. Checked: each must be one of the
    statement's ``keys`` and below MAX_ROWID; otherwise the store raises rather than guess."""
    if added < 0:  # a driver that does not count (sqlite3 does): nothing to tell the rows by
        raise DriverSqlError(f"{statement.name}: the driver gave no rowcount for an INSERT of {len(keys)} readings")
    if added == 0:
        return set()
    try:
        newest = cursor.execute(_LAST_ROWS, (added,)).fetchall()
    except statement.dbapi_error as exc:
        raise statement.error(exc, (added,), _LAST_ROWS) from exc
    found = {(sid, int(seq)) for _rowid, sid, seq in newest}
    if len(found) != added or not found <= keys or any(rowid >= MAX_ROWID for rowid, _s, _q in newest):
        raise DriverSqlError(f"{statement.name}: the {added} readings an INSERT of {len(keys)} added cannot be "
                             f"told by rowid (the newest rows: {newest[:5]!r})")
    return found


def _messages(a: Any, kind: str, location: str) -> list[dict[str, Any]]:
    """The mms.sensor_alert messages an alert row still owes the bus (its raise, if not published, then its clear)."""
    base = {"alert_id": a.alert_id, "sensor_id": a.sensor_id, "kind": kind, "rule": a.rule, "type": a.type,
            "severity": a.severity, "value": a.value, "threshold": a.threshold, "raised_seq": int(a.reading_seq),
            "location": location, "reason": "stored by a processor that stopped before publishing it"}
    raised_seq = int(a.reading_seq)
    out = []
    if a.published is None:
        out.append({**base, "state": "raised", "reading_seq": raised_seq, "timestamp": iso(a.raised_at),
                    "window": {"from_seq": raised_seq, "to_seq": raised_seq, "seconds": 0.0}})
    if a.state == "cleared":
        cleared_seq = int(a.cleared_seq)
        out.append({**base, "state": "cleared", "reading_seq": cleared_seq, "timestamp": iso(a.cleared_at),
                    "window": {"from_seq": cleared_seq, "to_seq": cleared_seq, "seconds": 0.0}})
    return out


def recompute_rollups(conn: Connection, pairs: Iterable[tuple[str, int]]) -> None:
    """Rebuild the rollups of ``(sensor_id, minute)`` from ``readings`` (a repair, and the tests' reference)."""
    for sid, minute in sorted(set(pairs)):
        r = readings.c
        count, low, high, total = conn.execute(
            sa.select(sa.func.count(), sa.func.min(r.value), sa.func.max(r.value), sa.func.sum(r.value))
            .where(r.sensor_id == sid, r.ts >= minute, r.ts < minute + 60)).one()
        conn.execute(reading_rollups.delete().where(reading_rollups.c.sensor_id == sid,
                                                    reading_rollups.c.minute == minute))
        if count:
            conn.execute(reading_rollups.insert().values(sensor_id=sid, minute=minute, count=count, min=low, max=high,
                                                         sum=total))
