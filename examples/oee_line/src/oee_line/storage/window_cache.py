"""The counters of the shift so far on SQLite, reduced once and then only what is new.

The OEE component publishes the figures of the shift so far every ``interval``: each publication
reduced every counter sample since the shift's start (``sqlite_counter_deltas``), so a shift cost the
square of its samples (18 % of the OEE line's simulated day). The reduction is additive: the deltas of
``[t0, t1)`` are those of ``[t0, u)`` and of ``[u, t1)`` joined (sums added, events concatenated), the
second part's baseline being the newest values before ``u``, which is what the whole window's reduction
sees there. :class:`CounterCache` keeps, per machine, ``[t0, upto)`` reduced, with ``upto`` ``settle``
seconds behind the window's end (what arrives late, the historian's held commits, a store-and-forward
replay, lands after it), and reduces only ``[upto, t1)`` each time, moving ``upto`` on.

What is kept is used only while it is still what a full reduction would give: no counter sample of the
machine with a time before ``upto`` was inserted since (telemetry's ``rowid`` grows with each insert: a
row above the newest ``rowid`` seen then is new), and the rows the baseline rests on (the newest of each
counter before ``t0``, or the window's first sample when there is none) are still there (retention deletes
the oldest rows first, ``clear`` every row). Otherwise the window is reduced in full again. The figures
are the full reduction's to the integer (tests/storage/test_window_cache.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from oee_line.oee import CounterDeltas
from oee_line.storage.window_sqlite import sqlite_counter_deltas

__all__ = ["SETTLE", "CounterCache"]

#: seconds behind the window's end what is kept stops: later samples may still be on their way. Each publication
#: reads this much of every counter again, and a sample landing before it makes the next one reduce the shift in
#: full. The chaos day (seed 7, 194,107 counter rows stored): the publications read 313,139 rows at 600 s, 249,962
#: at 300 s, with 12 full reductions at either value (each at a shift's start)
SETTLE = 300.0

_NEWEST = sa.text("SELECT max(rowid) FROM telemetry")
# '+' keeps SQLite off the (machine_id, metric, time) and time indexes: only the rowid range above the mark is read
_INSERTED_BEFORE = sa.text("""SELECT 1 FROM telemetry WHERE rowid > :rowid AND +machine_id = :m
    AND +metric IN ('GoodCount', 'TotalCount') AND +time < :upto LIMIT 1""")
_BASELINE = sa.text("""SELECT metric, (SELECT max(time) FROM telemetry WHERE machine_id = :m AND metric = k.metric
    AND time < :t0) FROM (SELECT 'GoodCount' AS metric UNION ALL SELECT 'TotalCount') k""")
_FIRST = sa.text("""SELECT metric, time FROM telemetry WHERE machine_id = :m AND metric IN ('GoodCount', 'TotalCount')
    AND time >= :t0 ORDER BY time LIMIT 1""")
_HAS = sa.text("SELECT count(*) FROM telemetry WHERE machine_id = :m AND metric = :k AND time = :t")


def join(head: CounterDeltas, tail: CounterDeltas) -> CounterDeltas:
    """The deltas of ``[t0, u)`` and of ``[u, t1)`` as those of ``[t0, t1)``."""
    return CounterDeltas(head.total + tail.total, head.good + tail.good, head.events + tail.events)


@dataclass
class _Reduced:
    t0: float
    upto: float
    rowid: int  # the newest telemetry rowid before it was read
    anchors: tuple[tuple[str, float], ...]  # (metric, time) of the rows its baseline rests on
    deltas: CounterDeltas


class CounterCache:
    """Per machine, its counters of ``[t0, upto)`` reduced; see the module docstring."""

    def __init__(self, settle: float = SETTLE) -> None:
        self.settle = settle
        self._kept: dict[str, _Reduced] = {}
        self.stats = {"kept": 0, "full": 0}

    def deltas(self, conn: Connection, machine: str, t0: float, t1: float) -> CounterDeltas:
        """``machine``'s counters of ``[t0, t1)``, as :func:`sqlite_counter_deltas` gives them."""
        newest = int(conn.execute(_NEWEST).scalar() or 0)  # first: a row inserted while we read counts as new
        upto = t1 - self.settle
        kept = self._kept.get(machine)
        if kept is not None and not self._usable(conn, machine, kept, t0, t1):
            kept = None
        if kept is None:
            self._kept.pop(machine, None)
            self.stats["full"] += 1
            if upto <= t0:
                return sqlite_counter_deltas(conn, machine, t0, t1)
            kept = _Reduced(t0, upto, newest, self._anchors(conn, machine, t0),
                            sqlite_counter_deltas(conn, machine, t0, upto))
            self._kept[machine] = kept
        else:
            self.stats["kept"] += 1
            if upto > kept.upto:
                kept = _Reduced(t0, upto, newest, kept.anchors,
                                join(kept.deltas, sqlite_counter_deltas(conn, machine, kept.upto, upto)))
                self._kept[machine] = kept
        return join(kept.deltas, sqlite_counter_deltas(conn, machine, kept.upto, t1))

    def _usable(self, conn: Connection, machine: str, kept: _Reduced, t0: float, t1: float) -> bool:
        if kept.t0 != t0 or kept.upto > t1:
            return False
        if conn.execute(_INSERTED_BEFORE, {"rowid": kept.rowid, "m": machine, "upto": kept.upto}).first():
            return False
        return all(conn.execute(_HAS, {"m": machine, "k": metric, "t": time}).scalar()
                   for metric, time in kept.anchors)

    @staticmethod
    def _anchors(conn: Connection, machine: str, t0: float) -> tuple[tuple[str, float], ...]:
        """The rows the baseline of ``t0`` rests on: the newest of each counter before ``t0``; when there is none,
        the first counter sample from ``t0`` on (the baseline then, never counted), if any."""
        found = tuple((metric, float(time)) for metric, time in conn.execute(_BASELINE, {"m": machine, "t0": t0})
                      if time is not None)
        if found:
            return found
        return tuple((metric, float(time)) for metric, time in conn.execute(_FIRST, {"m": machine, "t0": t0}))
