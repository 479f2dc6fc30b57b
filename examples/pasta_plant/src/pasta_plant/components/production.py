"""``pasta.batch_production``: the simulation engine of the storage.

For each heartbeat that carries a blade it writes two batches in one transaction — fresh with
``freshAmount`` units (learnt from FreshAmountChanged; ``fresh_amount`` until then), dry with
``batch_size - freshAmount`` — and, while total stock exceeds ``stock_target``, takes units out
of random batches (``ctx.random``) until it equals the target. Then it publishes the four
storage levels (percent of ``category_capacity``) on ``storage/levels``.

The non-empty batches are kept in memory (loaded once at start through the ``in_stock`` index),
so a heartbeat costs two inserts and a few updates, never a scan: a plant day runs in seconds.
A transaction that fails on a lost connection is retried (``tactics.retry``, name ``batches``).

Under a virtual clock the beats' transactions are grouped (``virtual_commit_beats`` to a commit,
:class:`forge_core.storage.CommitGroup`): each beat's insert still runs at its beat, in the open
transaction (a redelivered heartbeat is still refused by the unique index at once); its stock updates
are merged (the last level of each batch) and written just before the commit (the group's
``before_commit``); the open group is committed before any other connection of the engine is checked
out, at stop and when production is killed, so nothing else ever sees the database without a beat
production has handled, as with a commit per beat. A failing beat rolls the group back and its earlier
beats are written again, committed. In real time every beat is its own transaction.

Effectively once: the two batches carry the heartbeat's envelope id (``heartbeat_id``, unique with
``is_fresh``: migration ``pasta_0002``), written in the same transaction. A heartbeat delivered
again — handled and committed here, but not yet committed on Kafka when production was killed or
its consumer group's session timed out, or a retried commit whose first attempt did reach the
database — is refused by the unique index, rolled back, and counted as ``redeliveries_skipped``;
the in-memory stock is then read again from the database, which is the truth.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from forge_core import Check, Component, Envelope, Publishes, subscribe
from forge_core.storage import CommitGroup
from pasta_plant.db import CATEGORIES, LEVEL_KEYS, batches, seed_rows
from pasta_plant.ledger import ledger
from pasta_plant.odometer import Odometer, odometer
from pasta_plant.settings import ProductionParams


class BatchProduction(Component):
    Params = ProductionParams
    publishes = (Publishes("mms.storage_levels", topic="storage/levels"),
                 Publishes("pasta.new_batch", topic="storage/newBatch"))
    params: ProductionParams

    async def start(self) -> None:
        self.target = self.params.stock_target
        self.batch_size = self.params.batch_size
        self.fresh_amount = self.params.fresh_amount
        self.capacity = self.params.category_capacity
        self.engine = self.ctx.storage
        self._raw: Any = None
        mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(self.engine.dialect.paramstyle, "?")
        self._sql_insert = (f"INSERT INTO batches (id, blade_type, is_fresh, production_date, in_stock, "
                            f"heartbeat_id) VALUES ({', '.join([mark] * 6)})")
        self._sql_update = f"UPDATE batches SET in_stock = {mark} WHERE id = {mark}"
        self._native_dates = self.engine.dialect.name != "sqlite"
        self.retry = self.ctx.tactics.retry(name="batches")
        dbapi = self.engine.dialect.loaded_dbapi
        self.retry.retry_on = (OperationalError, DBAPIError, dbapi.OperationalError, dbapi.InterfaceError)
        self._integrity_error: type[Exception] = dbapi.IntegrityError
        self.group: CommitGroup | None = None
        self._updates: dict[int, int] = {}  # the open group's merged stock updates: batch id -> in_stock
        self._driver: tuple[Connection, Any] | None = None  # the group's connection and its driver's connection
        self._write = self._write_beat  # one bound method for every beat
        if getattr(self.ctx.clock, "is_virtual", False) and self.params.virtual_commit_beats > 1:
            self.group = CommitGroup(self.engine, self.params.virtual_commit_beats, name="production",
                                     before_commit=self._write_updates, after_commit=self._updates.clear,
                                     logger=self.ctx.log)
            self.ctx.at_end(self.group.end, name="commit_group")
        book = ledger(self.ctx)
        self.book = book.extra.setdefault("production", {
            "first_id": None, "produced": {c: 0 for c in LEVEL_KEYS.values()}, "units": 0, "batches": 0,
            "stock_min": None, "stock_max": None, "off_target": 0, "reductions": 0, "negative": 0,
            "levels_min": {}, "levels_max": {}, "split": {}, "redeliveries_skipped": 0,
        })
        self.odometer = odometer(self.ctx, "production")
        await self.retry.acall(self._load, self.params.fresh_start and not book.stock_reset)
        book.stock_reset = True
        self.levels = self._levels()

    async def stop(self) -> None:
        if self.group is not None:
            self.group.close()
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    async def _load(self, reset: bool) -> None:
        with self.engine.begin() as conn:
            if reset:
                conn.execute(sa.delete(batches))
                conn.execute(sa.insert(batches), seed_rows(datetime.fromtimestamp(self.ctx.clock.time(), UTC)))
            rows = conn.execute(sa.select(batches.c.id, batches.c.blade_type, batches.c.is_fresh, batches.c.in_stock)
                                .where(batches.c.in_stock > 0).order_by(batches.c.id)).all()
            top = conn.execute(sa.select(sa.func.max(batches.c.id))).scalar() or 0
        #: id -> [category, stock] of every non-empty batch
        self.stock: dict[int, list[Any]] = {r.id: [LEVEL_KEYS[(r.blade_type, bool(r.is_fresh))], r.in_stock]
                                            for r in rows}
        self.ids = list(self.stock)
        self.category = {key: 0 for key in LEVEL_KEYS.values()}
        for key, units in self.stock.values():
            self.category[key] += units
        self.total = sum(self.category.values())
        if self.book["first_id"] is None:  # this life's first; the run's is on the odometer (kills survive it)
            self.book["first_id"] = top + 1
        self.run_first_id = self.odometer.set_once("first_id", top + 1)
        self.next_id = top + 1
        self._note_stock()

    @subscribe("sorting/freshAmountChanged", types=["sched.fresh_amount_changed"], shared=False)
    def on_fresh_amount(self, envelope: Envelope) -> None:
        self.fresh_amount = max(0, min(self.batch_size, int(envelope.payload["freshAmount"])))

    @subscribe("heartbeats", types=["sched.machine_heartbeat"], shared=False)
    async def on_heartbeat(self, envelope: Envelope) -> None:
        blade = envelope.payload.get("bladeType")
        if blade is None:
            return
        try:  # the common case without the retry machinery's overhead; a lost connection is retried
            made = await self._produce(blade, envelope.id)
        except self.retry.retry_on:
            made = await self.retry.acall(self._produce, blade, envelope.id)
        if made is None:  # delivered again: its batches are in the database already
            return
        self.levels = self._levels()
        await self.ctx.publish("storage/levels", "mms.storage_levels", {"title": "StorageLevels", **self.levels})
        if self.params.publish_new_batch:
            for batch_id, fresh, units, date in made:
                await self.ctx.publish("storage/newBatch", "pasta.new_batch", {
                    "title": "NewBatch", "batchId": batch_id, "bladeType": blade, "isFresh": fresh,
                    "inStock": units, "productionDate": date.isoformat()})

    def _connection(self) -> Any:
        """A DBAPI connection kept for the component's life: a heartbeat's transaction is two
        executemany calls and a commit, without SQLAlchemy's per-statement work."""
        if self._raw is None:
            # under a virtual clock the runtime's SQLite engine commits without fsync (synchronous=OFF)
            self._raw = self.engine.raw_connection()
        return self._raw

    def _drop_connection(self) -> None:
        if self._raw is not None:
            try:
                self._raw.invalidate()
            except Exception:  # already gone
                self.ctx.log.debug("invalidate failed", exc_info=True)
            self._raw = None

    async def _produce(self, blade: str, heartbeat_id: str) -> list[tuple[int, bool, int, datetime]] | None:
        """One transaction: two new batches recording ``heartbeat_id``, then reductions down to the
        target. The in-memory view changes only after the commit, so a retried attempt starts from
        the same stock. None if the heartbeat's batches were already in the database (skipped)."""
        now = datetime.fromtimestamp(self.ctx.clock.time(), UTC)
        fresh = self.fresh_amount
        current = self.stock
        touched: dict[int, int] = {}  # batch id -> units after this transaction
        category = dict(self.category)
        made: list[tuple[int, bool, int, datetime]] = []
        keys: dict[int, str] = {}
        for offset, (is_fresh, units) in enumerate(((True, fresh), (False, self.batch_size - fresh))):
            batch_id = self.next_id + offset
            made.append((batch_id, is_fresh, units, now))
            keys[batch_id] = LEVEL_KEYS[(blade, is_fresh)]
            category[keys[batch_id]] += units
            touched[batch_id] = units
        ids = self.ids + [batch_id for batch_id, units in touched.items() if units > 0]
        excess = sum(category.values()) - self.target
        reductions = 0
        while excess > 0 and ids:
            index = self.ctx.random.randrange(len(ids))
            batch_id = ids[index]
            units = touched[batch_id] if batch_id in touched else current[batch_id][1]
            if units == 0:  # emptied earlier in this transaction
                ids[index] = ids[-1]
                ids.pop()
                continue
            take = self.ctx.random.randint(1, min(units, excess))
            touched[batch_id] = units - take
            excess -= take
            reductions += 1
            category[keys[batch_id] if batch_id in keys else current[batch_id][0]] -= take
        changed = [(units, batch_id) for batch_id, units in touched.items() if batch_id not in keys]
        # SQLAlchemy's SQLite DateTime text, formatted here: strftime cost ~1 s of a simulated day
        date = now if self._native_dates else (f"{now.year:04d}-{now.month:02d}-{now.day:02d} {now.hour:02d}:"
                                               f"{now.minute:02d}:{now.second:02d}.{now.microsecond:06d}")
        # SQLite's is_fresh as the int it stores: sqlite3 sends a bool through its adapter lookup (~3.3 k instructions)
        rows = [(batch_id, blade, is_fresh if self._native_dates else int(is_fresh), date, touched[batch_id],
                 heartbeat_id) for batch_id, is_fresh, _, _ in made]
        group = self.group
        try:
            if group is not None:  # in the open group; a failure rolls it back and commits its earlier beats again
                group.run(self._write, rows, changed)
            else:
                self._commit_beat(rows, changed)
        except BaseException as exc:
            if isinstance(exc, self._integrity_error) and self._recorded(heartbeat_id):
                await self._skip(heartbeat_id)
                return None
            raise
        # committed (or in the open group, committed before anyone else looks): the in-memory view follows
        self.next_id += len(made)
        emptied = False
        for batch_id, units in touched.items():
            if units > 0:
                if batch_id in keys:
                    self.ids.append(batch_id)
                    current[batch_id] = [keys[batch_id], units]
                else:
                    current[batch_id][1] = units
            elif batch_id in current:
                del current[batch_id]
                emptied = True
        if emptied:
            self.ids = list(current)
        self.category = category
        self.total = sum(category.values())
        book = self.book
        book["batches"] += len(made)
        book["units"] += self.batch_size
        book["reductions"] += reductions
        for _, is_fresh, _, _ in made:
            book["produced"][LEVEL_KEYS[(blade, is_fresh)]] += 1
        book["split"][str(fresh)] = book["split"].get(str(fresh), 0) + 1
        if self.total > self.target:
            book["off_target"] += 1
        self._note_stock()
        return made

    def _commit_beat(self, rows: list[tuple[Any, ...]], changed: list[tuple[int, int]]) -> None:
        """A beat's own transaction (real time): its inserts (a redelivery is refused here), its stock
        updates, the commit; rolled back on failure (the connection dropped unless the database refused it)."""
        raw = self._connection()
        try:
            cursor = raw.cursor()
            cursor.executemany(self._sql_insert, rows)
            if changed:
                cursor.executemany(self._sql_update, changed)
            raw.commit()
            cursor.close()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                raw.rollback()
            if not isinstance(exc, self._integrity_error):
                self._drop_connection()
            raise

    def _write_beat(self, conn: Connection, rows: list[tuple[Any, ...]], changed: list[tuple[int, int]]) -> None:
        """A beat in the open group: its inserts now (a redelivery is refused here), its stock updates
        merged into the group's (the last level of each batch), written by :meth:`_write_updates`. Run again
        after a rollback in the beats' order, it merges the same levels again: idempotent."""
        driver = self._driver
        if driver is None or driver[0] is not conn:  # the group's first connection, or a new one after a failure
            driver = self._driver = (conn, conn.connection.dbapi_connection)
        cursor = driver[1].cursor()  # the driver's, in the group's transaction
        try:
            cursor.executemany(self._sql_insert, rows)
        finally:
            cursor.close()
        updates = self._updates
        for units, batch_id in changed:
            updates[batch_id] = units

    def _write_updates(self, conn: Connection) -> None:
        """Before the group's COMMIT: the merged stock updates (forgotten once committed)."""
        if self._updates:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(self._sql_update, [(units, batch_id) for batch_id, units in self._updates.items()])
            finally:
                cursor.close()

    def _recorded(self, heartbeat_id: str) -> bool:
        """Whether batches for ``heartbeat_id`` are in the database (after a refused insert: the
        unique index, not another constraint, refused it)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(batches)
                                .where(batches.c.heartbeat_id == heartbeat_id)).scalar() != 0

    async def _skip(self, heartbeat_id: str) -> None:
        """A heartbeat delivered again: no second effect. The stock is read again from the database,
        since this life may not know the first effect (a commit whose answer was lost)."""
        self.book["redeliveries_skipped"] += 1
        self.odometer.add("redeliveries_skipped", at=self.ctx.clock.time())
        self.ctx.log.warning("heartbeat %s delivered again: its batches are in the database already, skipped "
                             "(%d redelivery(ies) skipped in this life)", heartbeat_id,
                             self.book["redeliveries_skipped"])
        await self._load(False)
        self.levels = self._levels()

    def _note_stock(self) -> None:
        book = self.book
        book["stock_min"] = self.total if book["stock_min"] is None else min(book["stock_min"], self.total)
        book["stock_max"] = self.total if book["stock_max"] is None else max(book["stock_max"], self.total)
        if any(units < 0 for units in self.category.values()):
            book["negative"] += 1
        for key, units in self.category.items():
            book["levels_min"][key] = min(book["levels_min"].get(key, units), units)
            book["levels_max"][key] = max(book["levels_max"].get(key, units), units)

    def _levels(self) -> dict[str, float]:
        return {LEVEL_KEYS[c]: round(self.category[LEVEL_KEYS[c]] / self.capacity * 100, 2) for c in CATEGORIES}

    # -- views -----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {"stock": getattr(self, "total", None), "levels": getattr(self, "levels", None)}

    def _database(self, first_id: int | None = None) -> tuple[int, int]:
        """(batches from ``first_id`` (default: this life's first) found in the database, units in stock
        by the database)."""
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(sa.func.count()).select_from(batches)
                                 .where(batches.c.id >= (first_id or self.book["first_id"]))).scalar() or 0
            units = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(batches.c.in_stock), 0))).scalar() or 0
        return int(found), int(units)

    def _per_heartbeat(self, first_id: int) -> dict[str, Any]:
        """Batches from ``first_id`` counted per source heartbeat id, by the database: how many
        heartbeats, which have more than their two batches (a duplicated effect), how many batches
        name no heartbeat."""
        hb = batches.c.heartbeat_id
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(hb, sa.func.count()).where(batches.c.id >= first_id)
                                .group_by(hb)).all()
        untracked = sum(n for key, n in rows if key is None)
        counted = [(key, int(n)) for key, n in rows if key is not None]
        over = sorted(((key, n) for key, n in counted if n > 2), key=lambda item: -item[1])
        return {"heartbeats": len(counted), "duplicated": len(over), "extra_batches": sum(n - 2 for _, n in over),
                "examples": dict(over[:5]), "untracked_batches": untracked}

    def report(self) -> dict[str, Any]:
        book = self.book
        found, units = self._database()
        return {
            "batches": book["batches"], "units": book["units"], "by_type": dict(book["produced"]),
            "fresh_split": dict(sorted(book["split"].items())), "stock": self.total,
            "stock_range": [book["stock_min"], book["stock_max"]], "target": self.target,
            "levels": self.levels,
            "level_ranges": {k: [book["levels_min"][k], book["levels_max"][k]] for k in book["levels_min"]},
            "reductions": book["reductions"], "in_database": found, "units_in_database": units,
            # read from the database at stop, over every life of this run (count_checks: vs the machines' beats)
            "run_batches_in_database": self._database(self.run_first_id)[0], "stopped_at": self.ctx.clock.time(),
            "run_per_heartbeat": self._per_heartbeat(self.run_first_id),
            "redeliveries_skipped": book["redeliveries_skipped"],
            "run_redeliveries_skipped": self.odometer["redeliveries_skipped"],
            "ledger_odometers": {k.removeprefix("odometer:"): v.view() for k, v in ledger(self.ctx).extra.items()
                                 if k.startswith("odometer:") and isinstance(v, Odometer)},
        }

    def checks(self) -> list[Check]:
        book = self.book
        found, units = self._database()
        per = self._per_heartbeat(self.run_first_id)
        settled = self.total == self.target or (book["batches"] == 0 and self.total <= self.target)
        return [
            Check("stock is never negative", book["negative"] == 0 and (book["stock_min"] or 0) >= 0,
                  f"stock ranged {book['stock_min']}..{book['stock_max']}"),
            Check("stock settles at the target", settled and book["off_target"] == 0,
                  f"stock {self.total}, target {self.target}; {book['off_target']} beat(s) left it above"),
            Check("every produced batch is in the database", found == book["batches"] and units == self.total,
                  f"{found} of {book['batches']} batches found; {units} units in the database, "
                  f"{self.total} in memory"),
            Check("no heartbeat produced twice (batches per heartbeat id, by the database)", per["duplicated"] == 0,
                  f"{per['heartbeats']} heartbeat(s), {per['duplicated']} with more than two batches "
                  f"({per['extra_batches']} extra) {per['examples'] or ''}; {book['redeliveries_skipped']} "
                  f"redelivery(ies) skipped in this life"),
        ]
