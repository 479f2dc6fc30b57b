"""Writing and reading the OEE line's time series (SQLite and PostgreSQL through SQLAlchemy Core).

A batch is one transaction: samples inserted once (``ON CONFLICT DO NOTHING ... RETURNING``), and
only the samples this batch inserted are added to the 1 min / 5 min / 1 h rollups by upsert
(count, sum, min, max), so a batch touches only its own buckets and a replayed sample never counts
twice. On PostgreSQL that is one statement (``oee_line.storage.batch``), on SQLite four DBAPI
statements built once (``oee_line.storage.batch_sqlite``).
Percentiles cannot be merged from aggregates: a touched 5 min / 1 h bucket gets p50/p95 NULL
("dirty") and :meth:`TimeSeriesStore.refresh_percentiles` recomputes just the dirty buckets from
their raw samples (bounded: one bucket's samples), which the storage component does every few
seconds. State changes become ``events`` intervals, closed by the next change of the same machine,
in whatever order the changes arrive. On TimescaleDB (``telemetry`` a hypertable, the rollups continuous
aggregates: migration ``oee_line_0002``) a batch inserts samples only, and the percentile refresh and
retention sweep refresh the aggregates and drop chunks instead (``oee_line.storage.timescale``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from oee_line.oee import CounterSample, StateChange
from oee_line.storage import timescale
from oee_line.storage.batch import insert_with_rollups
from oee_line.storage.batch_sqlite import add_states_sqlite, insert_samples_sqlite, insert_with_rollups_sqlite
from oee_line.storage.ranks import SET_RANKS, bucket_percentiles
from oee_line.storage.ranks_sorted import SortedBuckets
from oee_line.storage.rollups_held import HeldRollups
from oee_line.storage.tables import ROLLUPS, events, telemetry

__all__ = ["GOOD", "TOTAL", "Retention", "Sample", "TimeSeriesStore", "percentile", "timescale_version", "upsert"]

GOOD, TOTAL = "GoodCount", "TotalCount"

#: per level with percentiles, its dirty buckets (p50 NULL) oldest first, up to ``:limit``: built once, not at every
#: refresh (its clauses and operators were a tenth of the simulated day's refresh)
_DIRTY = {rollup.name: sa.select(t.machine_id, t.metric, t.bucket, t.count, t.min, t.max).where(t.p50.is_(None))
          .order_by(t.bucket).limit(sa.bindparam("limit")) for rollup in ROLLUPS if rollup.percentiles
          for t in [rollup.table.c]}
#: the levels with percentiles, coarsest first (each finer one's buckets lie within the coarser's)
_RANKED = sorted((rollup for rollup in ROLLUPS if rollup.percentiles), key=lambda rollup: -rollup.seconds)


class Sample(NamedTuple):
    """One stored value of a machine's metric at ``time`` (s since the epoch). Immutable and hashable; a named
    tuple rather than a frozen dataclass, whose ``__init__`` sets each field through ``object.__setattr__``:
    the historian makes one for every sample (196,425 in the OEE line's simulated day), ~3x the cost."""

    machine_id: str
    metric: str
    time: float
    value: float
    quality: str = "good"


@dataclass(frozen=True)
class Retention:
    """Days each kind of row is kept (0: forever)."""

    telemetry_days: float = 7.0
    rollup_1m_days: float = 30.0
    rollup_5m_days: float = 90.0
    rollup_1h_days: float = 730.0
    events_days: float = 365.0


def upsert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT with ``on_conflict_do_nothing``/``on_conflict_do_update``."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:
        raise NotImplementedError(
            f"oee_line storage: dialect {conn.dialect.name!r} is not supported (SQLite, PostgreSQL)"
        )
    return insert(table)


def timescale_version(conn: Connection) -> str | None:
    """The TimescaleDB extension's version when the database has it installed, else None."""
    if conn.dialect.name != "postgresql":
        return None
    row = conn.execute(sa.text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).first()
    return None if row is None else str(row[0])


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class TimeSeriesStore:
    """Synchronous; a component runs its calls in a worker thread."""

    def __init__(self, engine: Engine, *, hold_rollups: bool = False) -> None:
        """``hold_rollups``: on SQLite, :meth:`write_in` holds the rollups of a transaction's writes and the
        caller upserts them with :meth:`flush_rollups` just before it commits (a ``CommitGroup``'s
        ``before_commit``; ``oee_line.storage.rollups_held``). Otherwise each write upserts its own."""
        self.engine = engine
        self.held = HeldRollups() if hold_rollups else None
        self._hypertable: bool | None = None
        self._sorted = SortedBuckets()  # SQLite's open buckets kept sorted (oee_line.storage.ranks_sorted)

    def on_timescale(self) -> bool:
        """``telemetry`` is a hypertable and the rollups continuous aggregates (asked once)."""
        if self._hypertable is None:
            with self.engine.connect() as conn:
                self._hypertable = timescale.is_hypertable(conn)
        return self._hypertable

    # -- writing ---------------------------------------------------------------------------------------
    def write(self, samples: Sequence[Sample], states: Sequence[tuple[str, StateChange]] = ()) -> int:
        """Store a batch in one transaction; returns how many samples were new."""
        self.on_timescale()  # asked before the transaction: a pool of one connection has none to spare for it
        with self.engine.begin() as conn:
            new = self.write_in(conn, samples, states)
            self.flush_rollups(conn)
            return new

    def write_in(self, conn: Connection, samples: Sequence[Sample],
                 states: Sequence[tuple[str, StateChange]] = ()) -> int:
        """:meth:`write` in the caller's transaction (a ``forge_core.storage.CommitGroup``'s). Running it again
        after a rollback stores the same: samples are inserted unless there, rollups get what was inserted.
        Call :meth:`on_timescale` once before (it connects when not yet known)."""
        hyper = self.on_timescale()
        if conn.dialect.name == "postgresql":  # one statement, one round trip (oee_line.storage.batch)
            unique = [s for _, s in sorted({(s.machine_id, s.metric, s.time): s for s in samples}.items())]
            new = timescale.insert_samples(conn, unique) if hyper else insert_with_rollups(conn, unique)
        else:  # SQLite: DBAPI statements (oee_line.storage.batch_sqlite)
            if conn.dialect.name != "sqlite":
                upsert(conn, telemetry)  # raises, naming the dialect (an INSERT built per write only to check it)
            if self.held is None:
                new = insert_with_rollups_sqlite(conn, samples)
            else:  # the transaction's rollups upserted once, by flush_rollups before it commits
                fresh = insert_samples_sqlite(conn, samples)
                self.held.add(conn, fresh)
                new = len(fresh)
            add_states_sqlite(conn, sorted(states, key=lambda s: (s[0], s[1].ts)))
            return new
        for machine_id, change in sorted(states, key=lambda s: (s[0], s[1].ts)):
            self._add_state(conn, machine_id, change)
        return new

    def flush_rollups(self, conn: Connection) -> int:
        """Upsert the rollups held for ``conn``'s transaction (``hold_rollups``); returns the rows upserted."""
        return 0 if self.held is None else self.held.flush(conn)

    def _add_state(self, conn: Connection, machine_id: str, change: StateChange) -> None:
        conn.execute(
            upsert(conn, events)
            .on_conflict_do_nothing(index_elements=["machine_id", "event_type", "ts_start"])
            .values(
                machine_id=machine_id,
                event_type=change.state,
                ts_start=change.ts,
                payload={"fault_code": change.fault_code},
            )
        )
        c = events.c
        mine = c.machine_id == machine_id
        after = conn.execute(sa.select(sa.func.min(c.ts_start)).where(mine, c.ts_start > change.ts)).scalar()
        if after is not None:  # a change arriving late: it lasts until the next one already stored
            conn.execute(
                events.update().where(mine, c.ts_start == change.ts).values(ts_end=after, duration=after - change.ts)
            )
        before = conn.execute(sa.select(sa.func.max(c.ts_start)).where(mine, c.ts_start < change.ts)).scalar()
        if before is not None:
            conn.execute(
                events.update().where(mine, c.ts_start == before).values(ts_end=change.ts, duration=change.ts - before)
            )

    def refresh_percentiles(self, limit: int = 500) -> int:
        """Recompute p50/p95 of up to ``limit`` dirty buckets per level; returns how many were done. On
        TimescaleDB: materialize the continuous aggregates' invalidated buckets; returns the levels refreshed."""
        if self.on_timescale():
            return timescale.refresh_rollups(self.engine)
        done = 0
        with self.engine.begin() as conn:
            sqlite = conn.dialect.name == "sqlite"
            cursor: Any = conn.connection.dbapi_connection.cursor() if sqlite else None  # type: ignore[union-attr]
            if cursor is not None:
                self._sorted.begin_round()
            # coarse first: the 1 h level's rows read serve the 5 min buckets inside it (ranks_sorted)
            for rollup in _RANKED:
                dirty = conn.execute(_DIRTY[rollup.name], {"limit": limit}).all()
                ranked = []
                share = rollup is _RANKED[0]
                for machine_id, metric, bucket, count, low, high in dirty:
                    if cursor is not None:  # held sorted, read incrementally (oee_line.storage.ranks_sorted)
                        ranks = self._sorted.percentiles(cursor, rollup.name, machine_id, metric, int(bucket),
                                                         rollup.seconds, (int(count), float(low), float(high)),
                                                         share=share)
                    else:  # ranked by the database (oee_line.storage.ranks)
                        ranks = bucket_percentiles(conn, machine_id, metric, bucket, bucket + rollup.seconds)
                    if ranks is not None:  # None: its samples were removed by retention, nothing left to rank
                        ranked.append({"m": machine_id, "k": metric, "b": bucket, "p50": ranks[0], "p95": ranks[1]})
                if ranked:  # one statement for the level, built once (oee_line.storage.ranks.SET_RANKS)
                    conn.execute(SET_RANKS[rollup.name], ranked)
                done += len(ranked)
            if cursor is not None:
                cursor.close()
                self._sorted.end_round()
        return done

    def apply_retention(self, now: float, retention: Retention) -> dict[str, int]:
        """Delete rows older than their retention; returns rows deleted per table. On TimescaleDB telemetry
        and rollups lose whole chunks (``oee_line.storage.timescale.apply_retention``)."""
        deleted: dict[str, int] = {}
        days = {"1m": retention.rollup_1m_days, "5m": retention.rollup_5m_days, "1h": retention.rollup_1h_days}
        hyper = self.on_timescale()
        if retention.telemetry_days > 0:  # samples are deleted: what is held of their buckets would no longer match
            self._sorted.forget(before=now - retention.telemetry_days * 86_400)
        if hyper:
            deleted = timescale.apply_retention(self.engine, now, retention.telemetry_days, days)
        with self.engine.begin() as conn:
            if retention.telemetry_days > 0 and not hyper:
                cut = now - retention.telemetry_days * 86_400
                deleted["telemetry"] = conn.execute(telemetry.delete().where(telemetry.c.time < cut)).rowcount
            for rollup in ROLLUPS:
                if days[rollup.name] > 0 and not hyper:
                    cut = now - days[rollup.name] * 86_400
                    table = rollup.table
                    deleted[table.name] = conn.execute(
                        table.delete().where(table.c.bucket + rollup.seconds <= cut)
                    ).rowcount
            if retention.events_days > 0:
                cut = now - retention.events_days * 86_400
                deleted["events"] = conn.execute(events.delete().where(events.c.ts_end < cut)).rowcount
        return deleted

    def clear(self) -> None:
        """Empty the time series: samples, events and every rollup level. On TimescaleDB the rollups are
        continuous aggregates, which take no DELETE: the samples are deleted (TimescaleDB logs the range
        as invalidated) and each aggregate refreshed over all time, which empties its buckets."""
        hyper = self.on_timescale()
        self._sorted.forget()
        with self.engine.begin() as conn:
            for table in (telemetry, events, *(() if hyper else (r.table for r in ROLLUPS))):
                conn.execute(table.delete())
        if hyper:
            timescale.refresh_rollups(self.engine, everything=True)

    # -- reading ---------------------------------------------------------------------------------------
    def machines(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(events.c.machine_id).distinct().order_by(events.c.machine_id)).scalars())

    def states(self, machine_id: str, t0: float, t1: float) -> list[StateChange]:
        """The state changes of ``[t0, t1)`` and the one in force at ``t0``."""
        c = events.c
        with self.engine.connect() as conn:
            first = conn.execute(
                sa.select(sa.func.max(c.ts_start)).where(c.machine_id == machine_id, c.ts_start <= t0)
            ).scalar()
            lo = t0 if first is None else first
            rows = conn.execute(
                sa.select(c.ts_start, c.event_type, c.payload)
                .where(c.machine_id == machine_id, c.ts_start >= lo, c.ts_start < t1)
                .order_by(c.ts_start)
            ).all()
        return [StateChange(float(ts), kind, int((payload or {}).get("fault_code", 0))) for ts, kind, payload in rows]

    def counters(self, machine_id: str, t0: float, t1: float) -> list[CounterSample]:
        """Good/total merged by time (each carried forward: a bad part changes only the total), with the
        last sample before ``t0`` as the baseline."""
        c = telemetry.c
        mine = sa.and_(c.machine_id == machine_id, c.metric.in_((GOOD, TOTAL)))
        # on TimescaleDB each time bound also bounds sec, the partition column: only those chunks are read
        sec = timescale.sec_range if self.on_timescale() else lambda start, end: []
        with self.engine.connect() as conn:
            start = conn.execute(sa.select(sa.func.max(c.time)).where(mine, c.time < t0, *sec(None, t0))).scalar()
            lo = t0 if start is None else start
            # the newest value before lo per counter: one index probe each (a correlated max(time) subquery ran
            # once per row of the machine's counters, 170,000 probes for a day of 1 s samples on PostgreSQL)
            base = {}
            for metric in (GOOD, TOTAL):
                value = conn.execute(
                    sa.select(c.value)
                    .where(c.machine_id == machine_id, c.metric == metric, c.time < lo, *sec(None, lo))
                    .order_by(c.time.desc())
                    .limit(1)
                ).scalar()
                if value is not None:
                    base[metric] = value
            rows = conn.execute(
                sa.select(c.time, c.metric, c.value).where(mine, c.time >= lo, c.time < t1, *sec(lo, t1))
                .order_by(c.time, c.metric)
            ).all()
        good, total = base.get(GOOD, 0.0), base.get(TOTAL, 0.0)
        merged: dict[float, CounterSample] = {}
        for ts, metric, value in rows:
            if metric == GOOD:
                good = value
            else:
                total = value
            merged[float(ts)] = CounterSample(float(ts), int(good), int(total))
        return list(merged.values())

    def ideal_cycle_time(self, machine_id: str, default: float) -> float:
        c = telemetry.c
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(c.value)
                .where(c.machine_id == machine_id, c.metric == "IdealCycleTime")
                .order_by(c.time.desc())
                .limit(1)
            ).scalar()
        return default if value is None else float(value)
