"""CommitGroup on SQLite and PostgreSQL: writes sharing a transaction, committed every ``size`` units, before
another checkout of the engine, before another group on the engine begins, at close and at a cancelled guard
(a kill); a failing write rolls back and the earlier writes are committed again; a replay or a COMMIT the
database refuses keeps the writes for the next transaction. "Outside" is an engine of its own on the same
database (its pool is not watched): it sees only what is committed."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from forge_core.storage import CommitGroup, create_engine_from_url

metadata = sa.MetaData()
items = sa.Table("items", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("note", sa.Text))
levels = sa.Table("levels", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("level", sa.Integer))
parents = sa.Table("parents", metadata, sa.Column("id", sa.Integer, primary_key=True))
children = sa.Table("children", metadata, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("parent", sa.Integer, sa.ForeignKey("parents.id", deferrable=True,
                                                                  initially="DEFERRED")))


class Db:
    def __init__(self, url: str, backend: str) -> None:
        self.url, self.backend = url, backend
        # a lock waited for 100 ms, not the engine's 5 s (the failing replay below)
        connect_args: dict[str, Any] = {"options": "-c lock_timeout=100"} if backend == "postgresql" else {}
        self.engine = create_engine_from_url(url, connect_args=connect_args)
        if backend == "sqlite":
            sa.event.listen(self.engine, "connect", _short_busy_timeout)
            self.engine.dispose()
        metadata.create_all(self.engine)
        self.outside_engine = create_engine_from_url(url)

    def outside(self, table: sa.Table = items) -> list[int]:
        """The ids committed, read through an engine of its own."""
        with self.outside_engine.connect() as conn:
            return list(conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalars())

    def engine_ids(self) -> list[int]:
        """The ids a reader through the group's engine sees."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(items.c.id).order_by(items.c.id)).scalars())


def _short_busy_timeout(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA busy_timeout=100")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    url = f"sqlite:///{tmp_path}/group.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    found = Db(url, request.param)
    yield found
    found.engine.dispose()
    found.outside_engine.dispose()


def insert(conn: Connection, item: int) -> int:
    """Idempotent: a repeat is refused by the key at once, and returns 0."""
    return conn.execute(sa.text("INSERT INTO items (id) VALUES (:id) ON CONFLICT DO NOTHING"), {"id": item}).rowcount


def insert_strict(conn: Connection, item: int) -> None:
    """A repeat raises (IntegrityError): a write the database refuses."""
    conn.execute(items.insert().values(id=item))


def test_writes_share_a_transaction_committed_every_size_units(db: Db) -> None:
    group = CommitGroup(db.engine, 3, name="test")
    assert group.run(insert, 1) == 1 and group.run(insert, 1) == 0, "a repeat refused in the open transaction"
    group.run(insert, 2, units=0)  # not counted
    assert db.outside() == [] and (group.units, len(group.pending), group.commits) == (2, 3, 0)
    group.run(insert, 3)
    assert db.outside() == [1, 2, 3] and (group.units, group.pending, group.commits) == (0, [], 1)
    held = group.conn
    group.run(insert, 4)
    assert group.conn is held, "one connection kept across commits"
    group.close()
    assert db.outside() == [1, 2, 3, 4] and group.conn is None and group.commits == 2


def test_any_other_checkout_of_the_engine_commits_first_in_any_thread(db: Db) -> None:
    group = CommitGroup(lambda: db.engine, 100)
    group.run(insert, 1)
    group.run(insert, 2)
    assert db.outside() == []
    assert db.engine_ids() == [1, 2], "a reader through the engine sees every handled write"
    assert db.outside() == [1, 2] and group.pending == [] and group.commits == 1
    group.run(insert, 3)
    seen: list[list[int]] = []
    reader = threading.Thread(target=lambda: seen.append(db.engine_ids()))
    reader.start()
    reader.join()
    assert seen == [[1, 2, 3]] and group.commits == 2
    assert db.engine_ids() == [1, 2, 3] and group.commits == 2, "nothing open: a checkout commits nothing"
    group.close()
    assert not sa.event.contains(db.engine, "checkout", group._listener), "closed: the engine is not watched"


def test_another_group_beginning_on_the_engine_commits_the_open_one_first(db: Db) -> None:
    """Each group holds its connection already, so no checkout happens: the hand-over does it (on SQLite the
    second group's first write would otherwise wait for a lock the first group never gives up)."""
    first, second = CommitGroup(db.engine, 100, name="first"), CommitGroup(db.engine, 100, name="second")
    second.run(insert, 10)
    second.commit()
    first.run(insert, 1)
    assert db.outside() == [10]
    second.run(insert, 11)
    assert db.outside() == [1, 10] and first.commits == 1 and first.pending == []
    first.run(insert, 2)  # and back
    assert db.outside() == [1, 10, 11] and second.commits == 2
    first.close()
    second.close()
    assert db.outside() == [1, 2, 10, 11]


def test_a_new_engine_commits_what_the_old_one_holds(db: Db, tmp_path: Path) -> None:
    other = create_engine_from_url(f"sqlite:///{tmp_path}/other.db")
    metadata.create_all(other)
    current = [db.engine]
    group = CommitGroup(lambda: current[0], 100)
    group.run(insert, 1)
    current[0] = other
    group.run(insert, 2)
    assert db.outside() == [1] and group.conn is not None and group.conn.engine is other
    group.close()
    with other.connect() as conn:
        assert conn.execute(sa.select(items.c.id)).scalars().all() == [2]
    other.dispose()


def test_end_commits_like_a_kill_and_logs_a_failed_commit_instead_of_raising(
        db: Db, caplog: pytest.LogCaptureFixture) -> None:
    group = CommitGroup(db.engine, 100, name="readings")
    group.run(insert, 1)
    group.run(insert, 2)
    assert db.outside() == []
    group.end()  # the writer's life ended with no close(): ctx.at_end calls this
    assert db.outside() == [1, 2] and group.conn is None

    def refuse(conn: sa.Connection) -> None:
        raise RuntimeError("disk full")

    failing = CommitGroup(db.engine, 100, name="readings", before_commit=refuse)
    failing.run(insert, 3)
    with caplog.at_level("ERROR"):
        failing.end()  # logged, not raised: the life is over either way
    assert "readings: the last 1 write(s) could not be committed" in caplog.text
    assert failing.conn is None and db.outside() == [1, 2]


def test_a_failing_write_rolls_back_and_the_earlier_writes_are_committed_again(db: Db) -> None:
    group = CommitGroup(db.engine, 100)
    group.run(insert, 1)
    group.run(insert_strict, 2)
    held = group.conn
    with pytest.raises(sa.exc.IntegrityError):
        group.run(insert_strict, 1)  # refused: the transaction is rolled back, 1 and 2 with it
    assert db.outside() == [1, 2], "the earlier writes, committed again; the failed one left nothing"
    assert group.pending == [] and group.commits == 1 and group.conn is not held
    group.run(insert, 3)
    group.close()
    assert db.outside() == [1, 2, 3]


def test_a_failing_write_that_leaves_its_driver_cursor_open_does_not_block_the_replay(db: Db) -> None:
    """SQLite's close keeps the transaction (and the write lock) while a statement is unfinalized: the group rolls
    the failed transaction back on the driver's connection first, so the replay is not 'database is locked'."""
    cursors: list[Any] = []

    def write_raw(conn: Connection, item: int) -> None:
        cursor = conn.connection.cursor()
        cursors.append(cursor)  # held, as a traceback's frame holds it
        cursor.execute(f"INSERT INTO items (id) VALUES ({int(item)})")

    group = CommitGroup(db.engine, 100)
    group.run(write_raw, 1)
    with pytest.raises(db.engine.dialect.loaded_dbapi.IntegrityError):
        group.run(write_raw, 1)
    assert db.outside() == [1] and group.pending == [] and group.commits == 1


def test_a_failing_replay_is_kept_for_the_next_transaction(db: Db, caplog: pytest.LogCaptureFixture) -> None:
    """After the rollback another connection holds the table's lock: the replay waits 100 ms and fails. The
    caller gets its own error; the writes stay and go first into the next transaction."""
    lock = _Locker(db)
    sa.event.listen(db.engine, "checkout", lock.on_checkout)
    group = CommitGroup(db.engine, 100, name="test")
    group.run(insert, 1)
    group.run(insert, 2)
    lock.armed = True  # the replay's new connection: the outsider takes the lock first
    with caplog.at_level(logging.WARNING), pytest.raises(sa.exc.IntegrityError):
        group.run(insert_strict, 1)
    assert lock.taken and "2 earlier write(s) wait for the database" in caplog.text
    assert len(group.pending) == 2 and group.conn is None and group.commits == 0
    lock.release()
    assert db.outside() == [], "nothing committed yet"
    group.run(insert, 3)  # a new transaction: 1 and 2 first
    assert len(group.pending) == 3
    group.close()
    assert db.outside() == [1, 2, 3] and group.commits == 1


def test_a_commit_the_database_refuses_raises_once_and_keeps_the_writes(db: Db,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A deferred foreign key fails at COMMIT: one more try in a new transaction (the same refusal: not the
    failed one's row, which SQLite keeps in a transaction whose COMMIT failed), no endless retry; the write is
    kept, and commits once the database accepts it."""
    def write(conn: Connection) -> None:  # on the driver's cursor, as pasta's production writes
        cursor = conn.connection.cursor()
        cursor.execute("INSERT INTO children (id, parent) VALUES (1, 7)")
        cursor.close()

    group = CommitGroup(db.engine, 1)
    with caplog.at_level(logging.WARNING), pytest.raises(sa.exc.IntegrityError, match=r"(?i)foreign key"):
        group.run(write)
    assert "1 earlier write(s) wait for the database: IntegrityError" in caplog.text
    assert "foreign key" in caplog.text.lower() and "unique" not in caplog.text.lower(), caplog.text
    assert len(group.pending) == 1 and group.commits == 0 and db.outside(children) == []
    with db.engine.connect() as conn:  # SQLite keeps a transaction whose COMMIT failed open: not in the pool
        assert conn.execute(sa.select(sa.func.count()).select_from(children)).scalar() == 0
    with db.outside_engine.begin() as conn:
        conn.execute(parents.insert().values(id=7))
    group.commit()  # nothing open: the kept write in a new transaction, committed
    assert db.outside(children) == [1] and group.pending == [] and group.commits == 1
    group.close()


def test_before_commit_writes_merged_state_once_per_commit_even_after_a_rollback(db: Db) -> None:
    """Pasta's stock levels: each write merges its levels (the last one wins), ``before_commit`` writes them
    just before COMMIT, ``after_commit`` forgets them. A rollback takes the written levels; the replay merges
    the same again and writes them with the earlier writes."""
    merged: dict[int, int] = {}
    flushes: list[dict[int, int]] = []

    def write(conn: Connection, item: int, level: int, *, strict: bool = False) -> None:
        (insert_strict if strict else insert)(conn, item)
        merged[1] = level

    def before(conn: Connection) -> None:
        flushes.append(dict(merged))
        conn.execute(sa.text("INSERT INTO levels (id, level) VALUES (:id, :level) ON CONFLICT (id) DO UPDATE "
                             "SET level = excluded.level"), [{"id": k, "level": v} for k, v in merged.items()])

    group = CommitGroup(db.engine, 2, before_commit=before, after_commit=merged.clear)
    group.run(write, 1, 10)
    group.run(write, 2, 20)
    assert flushes == [{1: 20}] and merged == {} and _levels(db) == {1: 20}
    group.run(write, 3, 30)
    with pytest.raises(sa.exc.IntegrityError):
        group.run(lambda conn: write(conn, 3, 99, strict=True))
    assert flushes[-1] == {1: 30} and merged == {} and _levels(db) == {1: 30}, "the replay's levels, not 99"
    assert db.outside() == [1, 2, 3]
    group.close()
    assert len(flushes) == 2, "nothing open at close: no flush"


def test_bad_settings_are_refused_with_the_group_named() -> None:
    with pytest.raises(ValueError, match=r"CommitGroup\('production'\): size must be an integer of at least 1, got 0"):
        CommitGroup(lambda: sa.create_engine("sqlite://"), 0, name="production")
    with pytest.raises(TypeError, match="engine must be a SQLAlchemy Engine or a callable returning one, got str"):
        CommitGroup("sqlite://", 5)  # type: ignore[arg-type]


def test_a_pool_of_one_connection_is_refused_at_the_first_write(tmp_path: Path) -> None:
    """The group keeps its connection: with no second one, the checkout that would commit it first waits
    on the pool for its timeout instead. Said at the first write, naming the group and the database."""
    url = f"sqlite:///{tmp_path / 'one.db'}"
    engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=1, max_overflow=0)
    metadata.create_all(engine)
    group = CommitGroup(engine, 10, name="historian")
    with pytest.raises(ValueError, match=r"CommitGroup\('historian'\): the engine's pool \(sqlite:///.*one\.db\) "
                                         r"holds at most 1 connection"):
        group.run(lambda conn: conn.execute(items.insert().values(id=1)))
    roomy = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=1, max_overflow=1)
    group = CommitGroup(roomy, 10, name="historian")
    group.run(lambda conn: conn.execute(items.insert().values(id=1)))
    with roomy.connect() as reader:  # the second connection: the group commits first
        assert list(reader.execute(sa.select(items.c.id)).scalars()) == [1]
    group.close()


def _levels(db: Db) -> dict[int, int]:
    with db.outside_engine.connect() as conn:
        return {row.id: row.level for row in conn.execute(sa.select(levels))}


class _Locker:
    """Another connection taking the items table's write lock when armed (at the next checkout)."""

    def __init__(self, db: Db) -> None:
        self.db, self.armed, self.taken = db, False, False
        self._release: Callable[[], None] = lambda: None

    def on_checkout(self, *_: Any) -> None:
        if not self.armed:
            return
        self.armed = False
        if self.db.backend == "sqlite":
            raw = sqlite3.connect(str(self.db.engine.url.database), isolation_level=None)
            raw.execute("BEGIN IMMEDIATE")
            self._release = raw.close  # rolls back
        else:
            conn = self.db.outside_engine.connect()
            conn.execute(sa.text("LOCK TABLE items IN ACCESS EXCLUSIVE MODE"))
            self._release = conn.close  # rolls back
        self.taken = True

    def release(self) -> None:
        self._release()
