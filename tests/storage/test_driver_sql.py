"""DriverSql / DriverStatement on SQLite and PostgreSQL: Core statements compiled once for the driver's cursor
store what ``conn.execute`` stores (multi-row VALUES chunked, RETURNING's rows, executemany upserts, typed
values such as JSON), inside the SQLAlchemy transaction; statements with values bound in them are refused,
naming the statement; the driver's errors come back as SQLAlchemy's."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from forge_core.storage import DriverSql, DriverSqlError, DriverStatement, create_engine_from_url, driver_cursor
from forge_core.storage.driver_sql import MAX_ROWS, SQLITE_LIMIT, SQLITE_OLD_LIMIT, parameter_limit

metadata = sa.MetaData()
samples = sa.Table(
    "samples", metadata,
    sa.Column("machine", sa.String(50), primary_key=True),
    sa.Column("t", sa.Float, primary_key=True, autoincrement=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("note", sa.JSON, nullable=False),
)
totals = sa.Table(
    "totals", metadata,
    sa.Column("machine", sa.String(50), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("high", sa.Float, nullable=False),
)
log = sa.Table(
    "log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
)


def dialect_insert(engine: Engine | sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path}/driver.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = create_engine_from_url(url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def insert_new(engine: Engine, max_rows: int = MAX_ROWS) -> DriverSql:
    stmt = (dialect_insert(engine, samples).on_conflict_do_nothing(index_elements=["machine", "t"])
            .returning(samples.c.machine, samples.c.t))
    return DriverSql.compile(stmt, engine.dialect, name="test samples", max_rows=max_rows)


def stored(engine: Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]


def test_multi_row_inserts_in_chunks_return_exactly_what_they_inserted(db: Engine) -> None:
    rows = [{"machine": f"M{i % 3}", "t": float(i), "value": i / 7, "note": {"i": i, "s": "ä"}} for i in range(23)]
    with db.begin() as conn:  # the Core path stores a third of them first
        conn.execute(samples.insert(), rows[::3])
    sql = insert_new(db, max_rows=4)
    assert sql.rows_per_statement == 4
    with db.begin() as conn, driver_cursor(conn) as cursor:
        returned = sql.execute_rows(cursor, rows)  # six statements of up to four rows, the last of three
    assert sorted((m, float(t)) for m, t in returned) == sorted((r["machine"], r["t"]) for i, r in enumerate(rows)
                                                                  if i % 3)
    assert stored(db, samples) == sorted((r["machine"], r["t"], r["value"], r["note"]) for r in rows)
    with db.connect() as conn:  # the JSON text byte for byte what Core's bind processor writes
        texts = dict(conn.execute(sa.text("SELECT t, CAST(note AS TEXT) FROM samples")).all())
    assert texts[1.0] == texts[0.0].replace('"i": 0', '"i": 1') and json.loads(texts[1.0]) == {"i": 1, "s": "ä"}


def test_untyped_rows_in_the_statements_order_go_as_they_are_and_upserts_match_core(db: Engine) -> None:
    stmt = dialect_insert(db, totals)
    upsert = stmt.on_conflict_do_update(index_elements=["machine"], set_={
        "count": totals.c.count + stmt.excluded.count,
        "high": sa.case((stmt.excluded.high > totals.c.high, stmt.excluded.high), else_=totals.c.high)})
    fields = ("machine", "count", "high")
    sql = DriverSql.compile(upsert, db.dialect, name="test totals", fields=fields, typed=False)
    assert sql.keys == fields and sql.params(("M1", 1, 2.0)) == ("M1", 1, 2.0)
    batches = [[("M1", 2, 5.0), ("M2", 1, 1.5)], [("M1", 1, 9.0)], [("M2", 4, 0.5), ("M3", 1, -1.0)]]
    with db.begin() as conn, driver_cursor(conn) as cursor:
        for batch in batches:
            sql.executemany(cursor, batch)
    driver_rows = stored(db, totals)
    with db.begin() as conn:
        conn.execute(totals.delete())
        for batch in batches:
            conn.execute(upsert, [dict(zip(fields, row, strict=True)) for row in batch])
    assert driver_rows == stored(db, totals) == [("M1", 3, 9.0), ("M2", 5, 1.5), ("M3", 1, -1.0)]


def test_rows_in_another_order_are_picked_by_field_name(db: Engine) -> None:
    update = totals.update().where(totals.c.machine == sa.bindparam("m")).values(count=sa.bindparam("n"))
    sql = DriverSql.compile(update, db.dialect, name="test count", fields=("n", "pad", "m"))
    assert sql.keys == ("n", "m") and sql.params((7, "x", "M1")) == (7, "M1")
    with db.begin() as conn:
        conn.execute(totals.insert(), [{"machine": "M1", "count": 1, "high": 0.0}])
        with driver_cursor(conn) as cursor:
            sql.execute(cursor, (7, "ignored", "M1"))
            found = DriverSql.compile(sa.select(totals.c.count).where(totals.c.machine == sa.bindparam("m")),
                                      db.dialect, name="test read").execute(cursor, {"m": "M1"}).fetchone()
    assert found[0] == 7 and stored(db, totals) == [("M1", 7, 0.0)]


def test_the_cursor_runs_inside_the_sqlalchemy_transaction(db: Engine) -> None:
    """A connection with no transaction yet: the cursor begins one (as conn.execute would), so conn.commit()
    commits the driver's writes and a connection closed without it keeps none."""
    sql = DriverStatement("test log", log.insert(), columns=("kind", "detail"))
    with db.connect() as conn:
        with driver_cursor(conn) as cursor:
            sql.on(conn).execute(cursor, {"kind": "rolled back", "detail": {}})
        assert conn.in_transaction()
    with db.connect() as conn:
        with driver_cursor(conn) as cursor:
            sql.on(conn).execute(cursor, {"kind": "kept", "detail": [1, None]})
        conn.commit()
    assert [(kind, detail) for _id, kind, detail in stored(db, log)] == [("kept", [1, None])]


def test_the_drivers_errors_are_sqlalchemys_and_a_bad_row_names_the_statement(db: Engine) -> None:
    strict = DriverSql.compile(samples.insert(), db.dialect, name="test strict insert")
    row = {"machine": "M1", "t": 1.0, "value": 2.0, "note": {}}
    with db.begin() as conn, driver_cursor(conn) as cursor:
        strict.execute(cursor, row)
        with pytest.raises(DriverSqlError, match=r"test strict insert: a row without 'value'"):
            strict.execute(cursor, {"machine": "M1", "t": 2.0, "note": {}})
    with db.begin() as conn, driver_cursor(conn) as cursor, pytest.raises(sa.exc.IntegrityError) as raised:
        strict.execute_rows(cursor, [row])
    assert "INSERT INTO samples" in str(raised.value)


def test_a_percent_sign_in_the_statement_survives_positional_parameters(db: Engine) -> None:
    """psycopg's %(name)s becomes %s for the cursor; a literal % stays escaped for it."""
    query = sa.select(totals.c.machine).where(totals.c.machine.like(sa.literal_column("'M%'")),
                                               totals.c.count > sa.bindparam("least"))
    sql = DriverSql.compile(query, db.dialect, name="test like")
    assert sql.keys == ("least",)
    with db.begin() as conn:
        conn.execute(totals.insert(), [{"machine": "M1", "count": 3, "high": 0.0},
                                       {"machine": "X1", "count": 9, "high": 0.0}])
        with driver_cursor(conn) as cursor:
            assert sql.execute(cursor, {"least": 1}).fetchall() == [("M1",)]


@pytest.mark.parametrize(("stmt", "bound"), [
    (totals.update().where(totals.c.machine == "M1").values(count=sa.bindparam("n")), "machine_1='M1'"),
    (totals.select().where(totals.c.machine.in_(["M1", "M2"])), "machine_1=['M1', 'M2']"),
    (totals.update().where(totals.c.machine == sa.bindparam("m", "M1")).values(count=sa.bindparam("n")), "m='M1'"),
    (sqlite.insert(totals).on_conflict_do_update(index_elements=["machine"], set_={"high": None}), "param_1=None"),
])
def test_a_value_bound_in_the_statement_is_refused_naming_it(stmt: Any, bound: str) -> None:
    with pytest.raises(DriverSqlError, match="the acme store: values bound in the statement") as raised:
        DriverSql.compile(stmt, sqlite.dialect(), name="the acme store")
    assert bound in str(raised.value) and "sa.null()" in str(raised.value)


def test_a_sql_null_constant_and_column_keys_qualify() -> None:
    stmt = sqlite.insert(totals).on_conflict_do_update(index_elements=["machine"], set_={"high": sa.null()})
    sql = DriverSql.compile(stmt, sqlite.dialect(), name="test", columns=("machine", "count", "high"))
    assert sql.keys == ("machine", "count", "high") and "high = NULL" in sql.sql


def test_fields_must_hold_every_parameter() -> None:
    with pytest.raises(DriverSqlError, match=r"test totals: the statement takes 'high', not among the rows' fields"):
        DriverSql.compile(totals.insert(), sqlite.dialect(), name="test totals", fields=("machine", "count"))


def test_rows_sql_repeats_the_values_group_once_per_row_count() -> None:
    one = DriverSql("test", "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO NOTHING RETURNING a", ("a", "b"))
    assert one.rows_sql(3) == ("INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?) ON CONFLICT (a) DO NOTHING "
                               "RETURNING a")
    assert one.rows_sql(3) is one.rows_sql(3)
    with pytest.raises(DriverSqlError, match=r"test: 0 rows in one statement"):
        one.rows_sql(0)
    with pytest.raises(DriverSqlError, match="test: no single VALUES group"):
        DriverSql("test", "UPDATE t SET a = ? WHERE b = ?", ("a", "b")).rows_sql(2)
    with pytest.raises(DriverSqlError, match="does not hold every parameter"):
        DriverSql("test", "INSERT INTO t (a, b) SELECT a, b FROM (VALUES (?, ?)) WHERE a > ?", ("a", "b", "c")
                  ).rows_sql(2)


def test_postgresql_statements_are_positional_with_their_casts() -> None:
    from sqlalchemy.dialects.postgresql import psycopg

    dialect = psycopg.dialect()
    sql = DriverSql.compile(postgresql.insert(totals), dialect, name="test pg")
    assert dialect.paramstyle == "pyformat", "the engine's own dialect is left as it was"
    assert sql.sql.startswith("INSERT INTO totals (machine, count, high) VALUES (%s::VARCHAR, %s::INTEGER, %s")
    assert sql.rows_sql(2).count("(%s::VARCHAR") == 2 and sql.rows_per_statement == MAX_ROWS


def test_rows_per_statement_stay_under_the_dialects_parameter_limit() -> None:
    class OldSqlite:
        sqlite_version_info = (3, 31, 1)
        Error = Exception

    old = copy.copy(sqlite.dialect())
    old.dbapi = OldSqlite  # type: ignore[assignment]
    assert parameter_limit(old) == SQLITE_OLD_LIMIT and parameter_limit(sqlite.dialect()) == SQLITE_OLD_LIMIT
    wide = sa.Table("wide", sa.MetaData(), *(sa.Column(f"c{i}", sa.Integer, primary_key=i == 0) for i in range(12)))
    assert DriverSql.compile(wide.insert(), old, name="wide").rows_per_statement == SQLITE_OLD_LIMIT // 12  # 83
    import sqlite3

    if sqlite3.sqlite_version_info >= (3, 32, 0):
        engine = sa.create_engine("sqlite://")
        assert parameter_limit(engine.dialect) == SQLITE_LIMIT
        assert DriverSql.compile(wide.insert(), engine.dialect, name="wide", max_rows=10_000
                                 ).rows_per_statement == SQLITE_LIMIT // 12


def test_a_driver_statement_is_compiled_once_per_dialect(tmp_path: Path) -> None:
    built: list[str] = []

    def build(dialect: Any) -> Any:
        built.append(dialect.name)
        return dialect_insert_for(dialect.name, totals)

    statement = DriverStatement("test totals", build)
    one, two = sa.create_engine(f"sqlite:///{tmp_path}/one.db"), sa.create_engine(f"sqlite:///{tmp_path}/two.db")
    with one.connect() as a, two.connect() as b:
        first = statement.on(a)
        assert statement.on(a) is first and statement.on(b) is not first and statement.on(a) is first
    assert built == ["sqlite", "sqlite"] and repr(statement) == "DriverStatement('test totals')"


def dialect_insert_for(name: str, table: sa.Table) -> Any:
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)
