"""A machine's counters of a window reduced by SQLite, as ``window._COUNTERS`` reduces them on PostgreSQL.

The machine-by-machine Python path (``TimeSeriesStore.counters`` + :func:`~oee_line.oee.counter_deltas`)
shipped every counter sample of the window to Python as a row object: the OEE of the shift so far read
the whole shift each time, quadratic in the shift (the OEE line's simulated day). SQLite (window
functions, 3.25+) does the same reduction here: GoodCount and TotalCount merged by time, the
increments by ``lag`` over each counter's index range read in time order, a drop of either counter a
restart after which both count from 0, the newest values before ``t0`` as the baseline (when none, the
first merged sample is it, never counted). The two counters are merged by ``GROUP BY time`` (a sort):
SQLite joins subqueries by nested loops, so a FULL JOIN on time was quadratic in the window. One
statement per machine returns a first row with the sums (time NULL) and then, in time order, only the
samples :func:`~oee_line.oee.machine_window` looks at one by one (resets, samples with bad parts).
``CAST(value AS INTEGER)`` truncates as the Python path's ``int()``. Tested against the Python path
(tests/storage/test_window.py).

The window's other inputs, a machine's states (:func:`sqlite_states`) and ideal cycle time
(:func:`sqlite_ideal_cycle_time`), are ``TimeSeriesStore.states`` and ``ideal_cycle_time``'s statements
on the driver's cursor of the same connection (``forge_core.storage.DriverStatement``): through Core each
paid a connection checkout and the per-execution work for every machine of every OEE publication.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from forge_core.storage import DriverStatement, driver_cursor
from oee_line.oee import CounterDeltas, CounterEvent, StateChange
from oee_line.storage.tables import events, telemetry

__all__ = ["sqlite_counter_deltas", "sqlite_ideal_cycle_time", "sqlite_states"]

_e, _t = events.c, telemetry.c
_IN_FORCE = DriverStatement("oee_line state in force", sa.select(sa.func.max(_e.ts_start)).where(
    _e.machine_id == sa.bindparam("m"), _e.ts_start <= sa.bindparam("t0")), fields=("m", "t0"), typed=False)
_STATES = DriverStatement("oee_line states", sa.select(_e.ts_start, _e.event_type, _e.payload).where(
    _e.machine_id == sa.bindparam("m"), _e.ts_start >= sa.bindparam("lo"), _e.ts_start < sa.bindparam("t1"))
    .order_by(_e.ts_start), fields=("m", "lo", "t1"), typed=False)
_CYCLE = DriverStatement("oee_line ideal cycle time", sa.select(_t.value).where(  # LIMIT 1 OFFSET 0 as text:
    _t.machine_id == sa.bindparam("m"), _t.metric == sa.bindparam("metric")).order_by(_t.time.desc())  # no binds
    .limit(sa.literal_column("1")).offset(sa.literal_column("0")), fields=("m", "metric"), typed=False)

_PREV = """(SELECT CAST(value AS INTEGER) FROM telemetry WHERE machine_id = :m AND metric = '{metric}'
             AND time < {before} ORDER BY time DESC LIMIT 1)"""
_SERIES = """(SELECT time, CAST(value AS INTEGER) AS v, lag(CAST(value AS INTEGER)) OVER (ORDER BY time) AS p
            FROM telemetry WHERE machine_id = :m AND metric = '{metric}' AND time >= :t0 AND time < :t1)"""

_COUNTERS = sa.text(f"""
WITH p AS MATERIALIZED (
    SELECT {_PREV.format(metric="GoodCount", before=":t0")} AS good0,
           {_PREV.format(metric="TotalCount", before=":t0")} AS total0,
           (SELECT min(time) FROM telemetry WHERE machine_id = :m AND metric IN ('GoodCount', 'TotalCount')
            AND time >= :t0 AND time < :t1) AS first
),
s AS (  -- merged by time: a GROUP BY (one sort); a FULL JOIN of the two series was a nested loop here
    SELECT m.time, m.g, m.t, coalesce(m.gl, p.good0, 0) AS gp, coalesce(m.tl, p.total0, 0) AS tp,
           coalesce(m.t < coalesce(m.tl, p.total0, 0), 0) OR coalesce(m.g < coalesce(m.gl, p.good0, 0), 0) AS reset,
           p.good0, p.total0, p.first
    FROM (
        SELECT time, max(CASE WHEN k = 0 THEN v END) AS g, max(CASE WHEN k = 0 THEN p END) AS gl,
               max(CASE WHEN k = 1 THEN v END) AS t, max(CASE WHEN k = 1 THEN p END) AS tl
        FROM (SELECT 0 AS k, * FROM {_SERIES.format(metric="GoodCount")}
              UNION ALL SELECT 1 AS k, * FROM {_SERIES.format(metric="TotalCount")})
        GROUP BY time
    ) m
    CROSS JOIN p
),
d AS MATERIALIZED (
    SELECT time, reset,
           CASE WHEN NOT reset THEN coalesce(t - tp, 0) WHEN t IS NOT NULL THEN t
                ELSE coalesce({_PREV.format(metric="TotalCount", before="s.time")}, 0) END AS d_total,
           CASE WHEN NOT reset THEN coalesce(g - gp, 0) WHEN g IS NOT NULL THEN g
                ELSE coalesce({_PREV.format(metric="GoodCount", before="s.time")}, 0) END AS d_good
    FROM s
    WHERE good0 IS NOT NULL OR total0 IS NOT NULL OR time > first
)
SELECT NULL, coalesce(sum(d_total), 0), coalesce(sum(d_good), 0), NULL FROM d
UNION ALL
SELECT time, d_total, d_good, reset FROM d WHERE reset OR d_total <> d_good
ORDER BY 1
""")


def sqlite_counter_deltas(conn: Connection, machine: str, t0: float, t1: float) -> CounterDeltas:
    """``machine``'s counters of ``[t0, t1)`` reduced to :class:`CounterDeltas` by SQLite."""
    rows = conn.execute(_COUNTERS, {"m": machine, "t0": t0, "t1": t1}).all()
    (_, total, good, _), events = rows[0], rows[1:]  # NULL sorts first: the sums' row
    return CounterDeltas(int(total), int(good), tuple(
        CounterEvent(float(ts), int(d_total), int(d_good), bool(reset)) for ts, d_total, d_good, reset in events))


def sqlite_states(conn: Connection, machine: str, t0: float, t1: float) -> list[StateChange]:
    """``TimeSeriesStore.states``: the state changes of ``[t0, t1)`` and the one in force at ``t0``."""
    cursor: Any
    with driver_cursor(conn) as cursor:
        first = _IN_FORCE.on(conn).execute(cursor, (machine, t0)).fetchone()[0]
        rows = _STATES.on(conn).execute(cursor, (machine, t0 if first is None else first, t1)).fetchall()
    # the payload (NOT NULL) as the JSON type reads it: its text through json.loads
    return [StateChange(float(ts), kind, int((json.loads(payload) or {}).get("fault_code", 0)))
            for ts, kind, payload in rows]


def sqlite_ideal_cycle_time(conn: Connection, machine: str, default: float) -> float:
    """``TimeSeriesStore.ideal_cycle_time``: the newest IdealCycleTime sample's value, else ``default``."""
    cursor: Any
    with driver_cursor(conn) as cursor:
        row = _CYCLE.on(conn).execute(cursor, (machine, "IdealCycleTime")).fetchone()
    return default if row is None or row[0] is None else float(row[0])
