"""A dirty bucket's p50/p95 on SQLite from its values kept sorted in memory, read incrementally.

``TimeSeriesStore.refresh_percentiles`` on SQLite asked the database to rank every dirty bucket's
samples (``oee_line.storage.ranks``): the open 1 h bucket of each metric, touched by every batch, was
re-sorted whole at every refresh (the simulated day: 9.4 % of its CPU). Here each bucket's values are
kept sorted (``bisect.insort``) with the highest ``rowid`` read, and a refresh reads only the rows
inserted since (``rowid`` greater; the rollup's key index gives the bucket's range). What is held is
checked against the rollup row before use: its count, min and max must equal the held list's, else the
bucket is read again whole (a retention sweep, a clear, another writer's deletes). The figures are the
same floats as the database's ranking (the same interpolation between the same two ranks).
Held: the buckets of the last refresh only (a bucket not dirty then is dropped); nothing survives the
process, so a restart after a kill reads each bucket once, then incrementally.

A refresh ranks the coarse level first (1 h) and keeps the rows it read, with their times, for the round: a
finer bucket inside that hour (5 min) takes its new rows from them instead of reading them again (the
simulated day read every sample twice, once per level). Those rows are the hour's above the hour's mark; a
finer bucket whose own mark is lower (a bucket first ranked now, a late sample's) may miss rows between the
two marks, so what it then holds is checked against its rollup row as above, and read whole when it differs.
"""

from __future__ import annotations

from bisect import insort
from typing import Any, NamedTuple

from oee_line.storage.ranks import QUANTILES

__all__ = ["SortedBuckets"]

_NEWER = ("SELECT rowid, value FROM telemetry WHERE machine_id = ? AND metric = ? AND time >= ? AND time < ? "
          "AND rowid > ?")
#: the coarse level's read: with each row's time, for the finer buckets inside it
_NEWER_TIMED = ("SELECT rowid, time, value FROM telemetry WHERE machine_id = ? AND metric = ? AND time >= ? "
                "AND time < ? AND rowid > ?")


class _Shared(NamedTuple):
    """The rows a coarse bucket's read found this round: those of ``[start, end)`` with a rowid above ``above``."""

    start: int
    end: int
    above: int
    rows: list[tuple[int, float, float]]  # (rowid, time, value)
    newest: int  # the bucket's mark after the read


class SortedBuckets:
    """Sorted values per (level, machine, metric, bucket), each with the highest rowid read."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str, str, int], tuple[list[float], int]] = {}
        self._seen: set[tuple[str, str, str, int]] = set()
        self._shared: dict[tuple[str, str], _Shared] = {}  # this round's coarse reads, per (machine, metric)

    def forget(self, before: float | None = None) -> None:
        """Drop what is held: everything (rows were deleted: a clear), or with ``before`` only the buckets that begin
        before it (retention deleted the samples older than ``before``: a later bucket lost none, and the open 1 h
        bucket, read whole again after every hourly sweep, stays held)."""
        self._shared.clear()
        if before is None:
            self._held.clear()
            self._seen.clear()
            return
        self._held = {key: held for key, held in self._held.items() if key[3] >= before}
        self._seen = {key for key in self._seen if key[3] >= before}

    def begin_round(self) -> None:
        """A refresh begins: no coarse read of an earlier one (a refresh that failed midway) is used."""
        self._shared = {}

    def end_round(self) -> None:
        """Keep only the buckets ranked since the last call."""
        self._held = {key: self._held[key] for key in self._seen if key in self._held}
        self._seen = set()
        self._shared = {}

    def percentiles(self, cursor: Any, level: str, machine_id: str, metric: str, bucket: int, seconds: int,
                    rollup: tuple[int, float, float], *, share: bool = False) -> tuple[float, float] | None:
        """(p50, p95) of the bucket's samples; ``rollup`` is its row's (count, min, max). None: no samples.
        ``share``: a coarse level's bucket, whose rows read now serve the finer buckets inside it this round."""
        key = (level, machine_id, metric, bucket)
        held = self._held.get(key)
        values, last = held or ([], -1)
        checked = held is not None
        shared = None if share else self._shared.get((machine_id, metric))
        if shared is not None and shared.start <= bucket and bucket + seconds <= shared.end:
            start, end = float(bucket), float(bucket + seconds)  # the bounds _NEWER compares with
            _add(values, [value for rowid, time, value in shared.rows if start <= time < end and rowid > last])
            checked = checked or last < shared.above  # rows between the two marks may be missing
            last = max(last, shared.newest)
        elif share:
            last = self._read_shared(cursor, values, last, machine_id, metric, bucket, seconds)
        else:
            last = self._read(cursor, values, last, machine_id, metric, bucket, seconds)
        count, low, high = rollup
        if checked and (len(values) != count or not values or values[0] != low or values[-1] != high):
            values = []  # what is held no longer matches the table: read it whole
            last = self._read(cursor, values, -1, machine_id, metric, bucket, seconds)
        self._held[key] = (values, last)  # at once: a list changed in place always goes with its rowid
        self._seen.add(key)
        if not values:
            return None
        n = len(values)
        ranks = []
        for q in QUANTILES:  # oee_line.storage.store.percentile's arithmetic, as oee_line.storage.ranks
            pos = (n - 1) * q
            lo = int(pos)
            hi = min(lo + 1, n - 1)
            ranks.append(values[lo] + (values[hi] - values[lo]) * (pos - lo))
        return ranks[0], ranks[1]

    @staticmethod
    def _read(cursor: Any, values: list[float], last: int, machine_id: str, metric: str, bucket: int,
              seconds: int) -> int:
        cursor.execute(_NEWER, (machine_id, metric, float(bucket), float(bucket + seconds), last))
        rows = cursor.fetchall()
        _add(values, [value for _, value in rows])
        # the highest rowid: (rowid, value) tuples compare by their rowid (unique), in C, not a generator's steps
        return max(last, max(rows)[0]) if rows else last

    def _read_shared(self, cursor: Any, values: list[float], last: int, machine_id: str, metric: str, bucket: int,
                     seconds: int) -> int:
        """:meth:`_read` of a coarse bucket, its rows kept for the finer buckets inside it."""
        cursor.execute(_NEWER_TIMED, (machine_id, metric, float(bucket), float(bucket + seconds), last))
        rows = cursor.fetchall()
        _add(values, [value for _, _, value in rows])
        newest = max(last, max(rows)[0]) if rows else last
        self._shared[(machine_id, metric)] = _Shared(bucket, bucket + seconds, last, rows, newest)
        return newest


def _add(values: list[float], new: list[Any]) -> None:
    """``new`` values into the sorted ``values``."""
    if len(new) > 64 and len(values) < len(new):  # many at once (a first read): one sort
        values.extend([float(v) for v in new])
        values.sort()
    else:
        for value in new:
            insort(values, float(value))
