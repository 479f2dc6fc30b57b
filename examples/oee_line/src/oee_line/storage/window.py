"""Everything OEE needs of a window, for every machine at once, reduced by the database where it can.

A shift of 1 s samples is 57,600 counter rows per machine; shipping them to Python as row objects cost
2.4x what a hand-written psycopg loop over the same rows did (bench_oee_day). On PostgreSQL one
statement merges GoodCount and TotalCount by time (each carried forward, as
``TimeSeriesStore.counters`` does), takes the increments with ``lag`` (a drop of either counter is a
PLC restart: both count from 0) and returns per machine only the sums inside the window and the few
samples :func:`~oee_line.oee.machine_window` looks at one by one (resets, samples with bad parts), as
:class:`~oee_line.oee.CounterDeltas`. The states and ideal cycle times of all machines come in one
statement each. SQLite reduces the counters the same way in its own SQL, one statement per machine
(``oee_line.storage.window_sqlite``); any other dialect reads machine by machine through
``TimeSeriesStore`` and reduces in Python (:func:`~oee_line.oee.counter_deltas`): the same figures,
tested against each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from oee_line.oee import CounterDeltas, CounterEvent, StateChange, counter_deltas
from oee_line.storage.store import TimeSeriesStore
from oee_line.storage.timescale import sec_window
from oee_line.storage.window_cache import CounterCache
from oee_line.storage.window_sqlite import sqlite_counter_deltas, sqlite_ideal_cycle_time, sqlite_states

__all__ = ["MachineInputs", "window_inputs"]


@dataclass(frozen=True)
class MachineInputs:
    ideal_cycle_time: float
    states: list[StateChange]
    counters: CounterDeltas


# The counters of [t0, t1) as TimeSeriesStore.counters + counter_deltas see them: GoodCount and TotalCount
# merged by time, each carried forward (a bad part changes only TotalCount), the newest values before t0
# as the baseline (when none, the first merged sample is it, never counted); a drop of either counter is
# a restart, after which both count from 0. Without a reset a time's increments are each metric's own
# (value - its previous sample; 0 when the metric has no sample then), so the statement needs no
# carried-forward values but for the rare resets (a correlated probe each). Per machine (LATERAL): each
# metric is an index range read in time order, lag() and the FULL (merge) JOIN on time then need no sort;
# for all machines at once with machine_id = ANY(...) PostgreSQL 15 hashed and sorted 720,000 rows a shift
# (3x the time). int() of the Python path is trunc() here: counters are cumulative, never negative.
# On TimescaleDB every time bound is also a bound on sec (the partition column, floor(time)): {before_t0},
# {window} and {before_s} are filled by _counters, so each read touches only the chunks its range needs.
_COUNTERS = """
WITH p AS MATERIALIZED (  -- per machine, once (inlined, each reference below re-ran the probes per row)
    SELECT ids.id,
           (SELECT trunc(value) FROM telemetry WHERE machine_id = ids.id AND metric = 'GoodCount'
            AND time < :t0{before_t0} ORDER BY time DESC LIMIT 1) AS good0,
           (SELECT trunc(value) FROM telemetry WHERE machine_id = ids.id AND metric = 'TotalCount'
            AND time < :t0{before_t0} ORDER BY time DESC LIMIT 1) AS total0,
           least((SELECT min(time) FROM telemetry WHERE machine_id = ids.id AND metric = 'GoodCount'
                  AND time >= :t0 AND time < :t1{window}),
                 (SELECT min(time) FROM telemetry WHERE machine_id = ids.id AND metric = 'TotalCount'
                  AND time >= :t0 AND time < :t1{window})) AS first
    FROM unnest(CAST(:machines AS varchar[])) AS ids(id)
)
-- per machine (LATERAL), the increments of each merged time, reduced to one row in the same pass
SELECT p.id, x.*
FROM p
CROSS JOIN LATERAL (
    SELECT CAST(coalesce(sum(d_total), 0) AS bigint), CAST(coalesce(sum(d_good), 0) AS bigint),
           array_agg(time) FILTER (WHERE reset OR d_total <> d_good),
           array_agg(CAST(d_total AS bigint)) FILTER (WHERE reset OR d_total <> d_good),
           array_agg(CAST(d_good AS bigint)) FILTER (WHERE reset OR d_total <> d_good),
           array_agg(reset) FILTER (WHERE reset OR d_total <> d_good)
    FROM (
        SELECT s.time, s.reset,
               CASE WHEN NOT s.reset THEN coalesce(s.t - s.tp, 0)
                    WHEN s.t IS NOT NULL THEN s.t
                    ELSE coalesce((SELECT trunc(value) FROM telemetry WHERE machine_id = p.id
                                   AND metric = 'TotalCount' AND time < s.time{before_s} ORDER BY time DESC LIMIT 1), 0)
               END AS d_total,
               CASE WHEN NOT s.reset THEN coalesce(s.g - s.gp, 0)
                    WHEN s.g IS NOT NULL THEN s.g
                    ELSE coalesce((SELECT trunc(value) FROM telemetry WHERE machine_id = p.id
                                   AND metric = 'GoodCount' AND time < s.time{before_s} ORDER BY time DESC LIMIT 1), 0)
               END AS d_good
        FROM (
            SELECT coalesce(g.time, t.time) AS time, g.v AS g, t.v AS t,
                   coalesce(g.p, p.good0, 0) AS gp, coalesce(t.p, p.total0, 0) AS tp,
                   coalesce(t.v < coalesce(t.p, p.total0, 0), false)
                       OR coalesce(g.v < coalesce(g.p, p.good0, 0), false) AS reset
            FROM (SELECT time, trunc(value) AS v, lag(trunc(value)) OVER (ORDER BY time) AS p FROM telemetry
                  WHERE machine_id = p.id AND metric = 'GoodCount' AND time >= :t0 AND time < :t1{window}) g
            FULL JOIN (SELECT time, trunc(value) AS v, lag(trunc(value)) OVER (ORDER BY time) AS p FROM telemetry
                       WHERE machine_id = p.id AND metric = 'TotalCount' AND time >= :t0 AND time < :t1{window}) t
              ON g.time = t.time
            ORDER BY 1  -- array_agg gets the events in time order (a sort of one machine's rows, in memory)
        ) s
        WHERE p.good0 IS NOT NULL OR p.total0 IS NOT NULL OR s.time > p.first
    ) d
) x
"""


def _counters(on_timescale: bool) -> sa.TextClause:
    """_COUNTERS for plain tables, or with the sec bounds of the hypertable (``sec_window``'s s0, c1)."""
    sec = {"before_t0": " AND sec < :c0", "window": " AND sec >= :s0 AND sec < :c1",
           "before_s": " AND sec < :c1"}  # s.time < t1
    return sa.text(_COUNTERS.format(**(sec if on_timescale else dict.fromkeys(sec, ""))))


_COUNTERS_BY_PATH = {False: _counters(False), True: _counters(True)}

# Each machine's states from the one in force at t0 (as TimeSeriesStore.states).
_STATES = sa.text("""
WITH ids AS (SELECT unnest(CAST(:machines AS varchar[])) AS id),
lo AS (SELECT id, coalesce((SELECT max(ts_start) FROM events WHERE machine_id = ids.id AND ts_start <= :t0), :t0)
              AS lo FROM ids)
SELECT e.machine_id, e.ts_start, e.event_type, coalesce(CAST(CAST(e.payload AS jsonb) ->> 'fault_code' AS int), 0)
FROM lo JOIN events e ON e.machine_id = lo.id AND e.ts_start >= lo.lo AND e.ts_start < :t1
ORDER BY e.machine_id, e.ts_start
""")

_CYCLES = sa.text("""
SELECT id, (SELECT value FROM telemetry WHERE machine_id = ids.id AND metric = 'IdealCycleTime'
            ORDER BY time DESC LIMIT 1)
FROM unnest(CAST(:machines AS varchar[])) AS ids(id)
""")


def window_inputs(store: TimeSeriesStore, machines: Sequence[str], t0: float, t1: float,
                  default_cycle: float, cache: CounterCache | None = None) -> dict[str, MachineInputs]:
    """Per machine: its ideal cycle time (``default_cycle`` when none is stored), its states and its
    counters of ``[t0, t1)`` reduced to :class:`CounterDeltas`. On SQLite a ``cache`` (one per caller, whose
    windows grow: the shift so far) reduces only what is new since its last call (``window_cache``)."""
    if store.engine.dialect.name == "sqlite":  # the same reduction in SQLite's SQL, machine by machine
        with store.engine.connect() as conn:  # one connection, each statement on its cursor (window_sqlite)
            counted = {m: cache.deltas(conn, m, t0, t1) if cache is not None else sqlite_counter_deltas(conn, m, t0, t1)
                       for m in machines}
            return {m: MachineInputs(sqlite_ideal_cycle_time(conn, m, default_cycle), sqlite_states(conn, m, t0, t1),
                                     counted[m]) for m in machines}
    if store.engine.dialect.name != "postgresql":
        return {m: MachineInputs(store.ideal_cycle_time(m, default_cycle), store.states(m, t0, t1),
                                 counter_deltas(store.counters(m, t0, t1), t0, t1)) for m in machines}
    args: dict[str, object] = {"machines": list(machines), "t0": t0, "t1": t1}
    hyper = store.on_timescale()
    if hyper:
        args |= sec_window(t0, t1) | {"c0": math.ceil(t0)}
    with store.engine.connect() as conn:
        # the planner's cost of the per-machine probes (millions) switches JIT on: compiling took 1.7 s of a
        # 5 s statement that runs in well under a second per machine without it. LOCAL: this transaction only
        conn.execute(sa.text("SET LOCAL jit = off"))
        cycles = {m: default_cycle if v is None else float(v) for m, v in conn.execute(_CYCLES, args)}
        states: dict[str, list[StateChange]] = {m: [] for m in machines}
        for machine, ts, kind, fault in conn.execute(_STATES, args):
            states[machine].append(StateChange(float(ts), kind, int(fault)))
        counters = {m: CounterDeltas(0, 0, ()) for m in machines}
        for machine, total, good, times, d_totals, d_goods, resets in conn.execute(_COUNTERS_BY_PATH[hyper], args):
            events = zip(times or (), d_totals or (), d_goods or (), resets or (), strict=True)
            counters[machine] = CounterDeltas(int(total), int(good), tuple(
                CounterEvent(float(ts), int(d_total), int(d_good), bool(reset))
                for ts, d_total, d_good, reset in events))
    return {m: MachineInputs(cycles[m], states[m], counters[m]) for m in machines}
