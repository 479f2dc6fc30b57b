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

from oee_line.storage.batch_sqlite import LevelRows, rollup_rows, upsert_rollups_sqlite
from oee_line.storage.tables import ROLLUPS

if TYPE_CHECKING:
    from oee_line.storage.store import Sample

__all__ = ["HeldRollups"]

#: (machine_id, metric, bucket) -> [count, sum, min, max]
_Level = dict[tuple[str, str, int], list[Any]]


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
        for level, rows in zip(self._levels, rollup_rows(fresh), strict=True):
            for m, k, b, count, total, low, high in rows:
                held = level.get((m, k, b))
                if held is None:
                    level[(m, k, b)] = [count, total, low, high]
                else:
                    held[0] += count
                    held[1] += total
                    held[2] = min(held[2], low)
                    held[3] = max(held[3], high)

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
