"""A machine's counters of a window reduced on SQLite, as ``window._COUNTERS`` reduces them on PostgreSQL.

The machine-by-machine Python path (``TimeSeriesStore.counters`` + :func:`~oee_line.oee.counter_deltas`)
shipped every counter sample of the window to Python as a row object: the OEE of the shift so far read
the whole shift each time, quadratic in the shift (the OEE line's simulated day). Here each counter's
samples of the window come in time order from the ``(machine_id, metric, time)`` index as plain tuples of
the driver's cursor (``CAST(value AS INTEGER)`` truncates as the Python path's ``int()``), with the newest
value of each before ``t0`` as the baseline (when none, the first merged sample is it, never counted), and
one pass merges GoodCount and TotalCount by time and takes their increments, a drop of either counter a
restart after which both count from 0. SQLite's own statement for this (``lag`` over each counter, the two
merged by ``GROUP BY time``) cost 2-3x as much: its window function and the sort of the merged rows were
~4 % of the simulated day, whose audit reduces every machine's whole day once. Only the sums and the samples
:func:`~oee_line.oee.machine_window` looks at one by one (resets, samples with bad parts) are kept. Tested
against the Python path (tests/storage/test_window.py, test_window_sqlite.py).

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

_BEFORE = ("SELECT CAST(value AS INTEGER) FROM telemetry WHERE machine_id = ? AND metric = ? AND time < ? "
           "ORDER BY time DESC LIMIT 1")
_SERIES = ("SELECT time, CAST(value AS INTEGER) FROM telemetry WHERE machine_id = ? AND metric = ? AND time >= ? "
           "AND time < ? ORDER BY time")


def sqlite_counter_deltas(conn: Connection, machine: str, t0: float, t1: float) -> CounterDeltas:
    """``machine``'s counters of ``[t0, t1)`` reduced to :class:`CounterDeltas`; see the module docstring."""
    cursor: Any
    with driver_cursor(conn) as cursor:
        cursor.execute(_BEFORE, (machine, "GoodCount", t0))
        good0 = cursor.fetchone()
        cursor.execute(_BEFORE, (machine, "TotalCount", t0))
        total0 = cursor.fetchone()
        cursor.execute(_SERIES, (machine, "GoodCount", t0, t1))
        goods = cursor.fetchall()
        cursor.execute(_SERIES, (machine, "TotalCount", t0, t1))
        totals = cursor.fetchall()
    counted = good0 is not None or total0 is not None  # no baseline: the first merged sample is it
    gp = 0 if good0 is None else good0[0]  # the counters' previous values
    tp = 0 if total0 is None else total0[0]
    total = good = 0
    found: list[CounterEvent] = []
    i = j = 0
    n_goods, n_totals = len(goods), len(totals)
    while i < n_goods or j < n_totals:  # merged by time: a sample of each counter at one time is one step
        g: int | None = None
        t: int | None = None
        if j == n_totals or (i < n_goods and goods[i][0] <= totals[j][0]):
            ts, g = goods[i]
            i += 1
            if j < n_totals and totals[j][0] == ts:
                t = totals[j][1]
                j += 1
        else:
            ts, t = totals[j]
            j += 1
        reset = (t is not None and t < tp) or (g is not None and g < gp)
        if reset:  # counted from 0 again: the new value is the increment (a counter without a sample: its last)
            d_total = tp if t is None else t
            d_good = gp if g is None else g
        else:
            d_total = 0 if t is None else t - tp
            d_good = 0 if g is None else g - gp
        if counted:
            total += d_total
            good += d_good
            if reset or d_total != d_good:
                found.append(CounterEvent(float(ts), d_total, d_good, reset))
        counted = True
        if g is not None:
            gp = g
        if t is not None:
            tp = t
    return CounterDeltas(total, good, tuple(found))


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
