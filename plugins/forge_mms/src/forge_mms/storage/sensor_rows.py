"""The ``sensors`` and ``reading_rollups`` rows of a write, from its readings grouped once per sensor (no
database here: :mod:`forge_mms.storage.sensor_store` writes them).

A dict append a reading groups them; the rest is a step per sensor and per minute: a sensor's newest
reading by ``max``, its first by ``min``, its minutes cut by ``bisect`` over its times when they are in
time order (the common case), one reading at a time when not.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from forge_mms.anomaly.readings import Reading

__all__ = ["by_sensor", "first_of", "rollup_rows", "sensor_rows"]

_seq, _ts, _value = attrgetter("seq"), attrgetter("ts"), attrgetter("value")


def by_sensor(readings: Iterable[Reading]) -> dict[str, list[Reading]]:
    """The readings per sensor id, each sensor's in their order."""
    groups: dict[str, list[Reading]] = defaultdict(list)
    for r in readings:
        groups[r.sensor_id].append(r)
    return groups


def first_of(batch: Iterable[Reading], keys: set[tuple[str, int]]) -> list[Reading]:
    """The readings whose key ``(sensor_id, seq)`` is in ``keys``, in their order, a key's first only: a key
    twice in a batch is one reading stored (its first), counted and rolled up once."""
    left = set(keys)
    found: list[Reading] = []
    for r in batch:
        key = (r.sensor_id, r.seq)
        if key in left:
            left.remove(key)
            found.append(r)
    return found


def sensor_rows(batch: dict[str, list[Reading]], fresh: dict[str, list[Reading]]) -> list[dict[str, Any]]:
    """A row per sensor of the batch (per sensor), in sensor order: the newest seq, and ``stored``: the
    readings this transaction inserted (``fresh``, per sensor too)."""
    rows: list[dict[str, Any]] = []
    for sid in sorted(batch):
        group = batch[sid]
        r = max(group, key=_seq)  # the reading of the highest seq (the first of equal ones)
        rows.append({"sensor_id": sid, "kind": r.kind, "location": r.location, "unit": r.unit,
                     "first_seen": min(map(_ts, group)), "last_seen": r.ts, "last_seq": r.seq,
                     "stored": len(fresh.get(sid, ()))})
    return rows


def rollup_rows(fresh: dict[str, list[Reading]]) -> list[dict[str, Any]]:
    """A row per sensor and minute (epoch seconds of its start) of the readings inserted (per sensor), in
    (sensor, minute) order: their count, min, max and sum (each minute's values in the readings' order)."""
    rows: list[dict[str, Any]] = []
    for sid in sorted(fresh):
        group = fresh[sid]
        times, values = list(map(_ts, group)), list(map(_value, group))
        if times != sorted(times):  # out of time order (rare): grouped one by one
            per_minute: dict[int, list[float]] = defaultdict(list)
            for ts, value in zip(times, values):
                per_minute[int(ts // 60) * 60].append(value)
            rows.extend(_rollup(sid, minute, per_minute[minute]) for minute in sorted(per_minute))
            continue
        # in time order: each minute's readings are a run, up to the first at or past its end (float // by 60
        # is the exact floor, so ts < minute + 60 is minute_of(ts) == minute): a step per minute
        start = 0
        while start < len(times):
            minute = int(times[start] // 60) * 60
            end = bisect_left(times, minute + 60, start)
            rows.append(_rollup(sid, minute, values[start:end]))
            start = end
    return rows


def _rollup(sensor_id: str, minute: int, values: list[float]) -> dict[str, Any]:
    return {"sensor_id": sensor_id, "minute": minute, "count": len(values), "min": min(values), "max": max(values),
            "sum": sum(values)}
