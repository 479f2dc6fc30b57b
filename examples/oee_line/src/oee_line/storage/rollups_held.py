"""The rollups of a transaction's writes on SQLite, held and upserted once just before it commits.

A batch's samples go to ``telemetry`` at once; its 1 min / 5 min / 1 h rollups were upserted by every
batch (``batch_sqlite.insert_with_rollups_sqlite``), so under a virtual clock, where the historian's
writes share a transaction (``forge_core.storage.CommitGroup``), an open bucket was upserted by every
10 s commit of the simulated day: a 1 h bucket 360 times. :class:`HeldRollups` adds each write's new
samples, grouped by bucket as before, to what it holds for the open transaction, and :meth:`flush`
upserts that once (the group's ``before_commit``: before every COMMIT, so also before any other
checkout of the engine, at stop and at a kill). A reader through the engine therefore finds the rows a
commit per write gives; a crash loses only the uncommitted transaction, its samples with their rollups.

What is held belongs to one transaction (``Connection.get_transaction()``, kept by reference): a write
in another transaction drops it first. After a rollback the group runs its earlier writes again in a new
transaction, and they add their samples again, now from nothing. Sums are added batch by batch as
before, but the stored sum gets the transaction's total instead of each batch's in turn: the same
figure to the bit when the values' sums are exact (integer-valued samples below 2**53, as the OEE
line's counters, state codes and cycle times), otherwise within a rounding of the last place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from oee_line.storage.batch_sqlite import LevelRows, upsert_rollups_sqlite
from oee_line.storage.tables import ROLLUPS

if TYPE_CHECKING:
    from oee_line.storage.store import Sample

__all__ = ["HeldRollups"]

#: (machine_id, metric, bucket) -> [count, sum, min, max]
_Level = dict[tuple[str, str, int], list[Any]]
_SECONDS = tuple(rollup.seconds for rollup in ROLLUPS)
_FINEST = _SECONDS[0]  # every level's width is a multiple of it


class HeldRollups:
    """The open transaction's rollup rows, merged by bucket; see the module docstring."""

    def __init__(self) -> None:
        self._tx: object | None = None
        self._levels: list[_Level] = [{} for _ in ROLLUPS]

    def __len__(self) -> int:
        """Buckets held, over every level."""
        return sum(len(level) for level in self._levels)

    def add(self, conn: Connection, fresh: Sequence[Sample]) -> None:
        """Hold the rollups of ``fresh`` (samples this transaction inserted) for :meth:`flush`."""
        tx = conn.get_transaction()
        if tx is not self._tx:  # a new transaction: what was held was committed or rolled back
            self._levels = [{} for _ in ROLLUPS]
            self._tx = tx
        # this write's values per 1 min bucket (the finest level: each coarser bucket is whole minutes), in
        # ``fresh``'s order: one key and one lookup a sample instead of one per level
        minutes: dict[tuple[str, str, int], list[float]] = {}
        for s in fresh:
            key = (s.machine_id, s.metric, int(s.time // _FINEST) * _FINEST)  # Rollup.bucket_of, inline
            values = minutes.get(key)
            if values is None:
                minutes[key] = [s.value]
            else:
                values.append(s.value)
        for level, seconds in zip(self._levels, _SECONDS, strict=True):
            # a bucket's values are its minutes' joined in first-seen order: ``fresh`` is sorted by machine, metric
            # and time (``insert_samples_sqlite``), so that is ``fresh``'s order and the batch's sum the same float
            groups = minutes
            if seconds != _FINEST:
                groups = {}
                for (machine_id, metric, minute), values in minutes.items():
                    key = (machine_id, metric, minute // seconds * seconds)
                    joined = groups.get(key)
                    if joined is None:
                        groups[key] = values
                    else:
                        groups[key] = joined + values
            for key, values in groups.items():
                held = level.get(key)
                if held is None:
                    level[key] = [len(values), sum(values), min(values), max(values)]
                else:
                    held[0] += len(values)
                    held[1] += sum(values)
                    held[2] = min(held[2], min(values))
                    held[3] = max(held[3], max(values))

    def flush(self, conn: Connection) -> int:
        """Upsert what is held for ``conn``'s transaction and forget it; returns the rows upserted. What
        another transaction left (rolled back) is dropped, not written."""
        levels, tx = self._levels, self._tx
        self._levels, self._tx = [{} for _ in ROLLUPS], None
        if tx is None or tx is not conn.get_transaction():
            return 0
        rows: LevelRows = [[(m, k, b, *held) for (m, k, b), held in sorted(level.items())] for level in levels]
        upsert_rollups_sqlite(conn, rows)
        return sum(len(level) for level in rows)
