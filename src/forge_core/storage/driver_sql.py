"""Core statements run on the driver's own cursor: compiled once per dialect, executed without SQLAlchemy's
per-execution work.

``conn.execute(stmt, rows)`` pays, for every call, the statement cache's key, parameter processing,
events, a ``CursorResult`` and its rows' processing: tens of microseconds, more than SQLite's own work
on a small batch (a simulated day writes hundreds of thousands of them). A :class:`DriverSql` is a Core
statement compiled once, with positional parameters, for the DBAPI cursor of the connection: its SQL
text, the order of its parameters, and the row picker that turns a row into them (C's ``itemgetter``;
``typed``: plus the column types' bind processors where a type has one, e.g. JSON). It also gives the statement
with ``n`` rows in its VALUES clause, chunked under the dialect's parameter limit (SQLite's
``executemany`` drops ``RETURNING``'s rows: one multi-row INSERT returns them all).

What it skips is what SQLAlchemy adds around the driver: no events (``before_cursor_execute``), no
echo, no result processing (rows come back as the driver gives them). A statement qualifies only if
every parameter is taken from the row: a value bound in the statement (``col == "raised"``, a Python
``None`` in ``set_``, an ``IN`` list) is refused at compile time, naming the statement. Errors of the
driver are raised as SQLAlchemy's (``sa.exc.IntegrityError``, ``OperationalError``...), as through
``conn.execute``. See docs/storage.md, "Statements on the driver's cursor".
"""

from __future__ import annotations

import copy
import re
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect

__all__ = ["MAX_ROWS", "DriverSql", "DriverSqlError", "DriverStatement", "driver_cursor", "parameter_limit"]

#: Most rows one multi-row statement carries (fewer when the dialect's parameter limit says so): each
#: row count is its own SQL text, parsed once by the database and kept here, so it is bounded.
MAX_ROWS = 500
SQLITE_LIMIT = 32_766  # SQLITE_MAX_VARIABLE_NUMBER since SQLite 3.32.0
SQLITE_OLD_LIMIT = 999  # before 3.32.0, and the limit assumed for an unknown dialect
POSTGRESQL_LIMIT = 65_535  # the wire protocol counts parameters in 16 bits

_PLACEHOLDERS = {"qmark": "?", "format": "%s"}
_VALUES = re.compile(r"\bVALUES\s*\(")

Row = Any  # a mapping by parameter name, or a sequence in ``fields`` order


class DriverSqlError(ValueError):
    """A statement the driver's cursor cannot run as given, or a row it cannot take (names the statement)."""


def parameter_limit(dialect: Dialect) -> int:
    """The most parameters one statement may carry on ``dialect`` (SQLite's from the library's version)."""
    if dialect.name == "sqlite":
        version = getattr(getattr(dialect, "dbapi", None), "sqlite_version_info", (0,))
        return SQLITE_LIMIT if tuple(version) >= (3, 32, 0) else SQLITE_OLD_LIMIT
    if dialect.name == "postgresql":
        return POSTGRESQL_LIMIT
    return SQLITE_OLD_LIMIT


def _positional(dialect: Dialect, name: str) -> Dialect:
    """``dialect``, or a copy of it rendering ``%s`` where its driver takes ``%(name)s`` (psycopg's)."""
    if dialect.positional:
        return dialect
    if dialect.paramstyle != "pyformat":
        raise DriverSqlError(f"{name}: the {dialect.name}+{dialect.driver} driver takes {dialect.paramstyle!r} "
                             "parameters, no positional ones: run the statement through conn.execute")
    found = copy.copy(dialect)  # pyformat's drivers take format's %s too (psycopg, psycopg2, mysqlclient)
    found.paramstyle = "format"
    found.positional = True
    return found


def _short(sql: str) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= 200 else flat[:197] + "..."


class DriverSql:
    """One statement for the driver's cursor: ``sql`` with positional parameters ``keys`` (in order),
    ``params(row)`` the row's values in that order. Build it with :meth:`compile` (or, per dialect, a
    :class:`DriverStatement`); run it with :meth:`execute`, :meth:`executemany`, :meth:`execute_rows` on a
    cursor of :func:`driver_cursor`, or ``cursor.execute(s.sql, s.params(row))`` where every microsecond
    counts (then raise ``s.error(exc)`` for an ``s.dbapi_error``).

    ``fields``: rows are sequences in this order (each key must be one of them; in the keys' own order the
    row is passed as it is, no copy); None: rows are mappings by key."""

    __slots__ = ("_group", "_many", "_pick", "dbapi_error", "fields", "keys", "name", "params", "paramstyle",
                 "rows_per_statement", "sql")

    def __init__(self, name: str, sql: str, keys: Sequence[str], *, fields: Sequence[str] | None = None,
                 processors: Sequence[Callable[[Any], Any] | None] | None = None, paramstyle: str = "qmark",
                 limit: int = SQLITE_OLD_LIMIT, max_rows: int = MAX_ROWS,
                 dbapi_error: type[Exception] = Exception) -> None:
        self.name, self.sql, self.keys = name, sql, tuple(keys)
        self.fields = None if fields is None else tuple(fields)
        self.paramstyle, self.dbapi_error = paramstyle, dbapi_error
        if max_rows < 1:
            raise DriverSqlError(f"{name}: max_rows must be at least 1, got {max_rows}")
        self.rows_per_statement = max(1, min(max_rows, limit // max(1, len(self.keys))))
        self._pick = self._picker(processors)  # None: a row is its own parameters
        self.params: Callable[[Row], Sequence[Any]] = self._pick or _as_is
        self._group: tuple[str, str, str] | None = None
        self._many: dict[int, str] = {}

    @classmethod
    def compile(cls, stmt: Any, dialect: Dialect, *, name: str, columns: Sequence[str] | None = None,
                fields: Sequence[str] | None = None, typed: bool = True, max_rows: int = MAX_ROWS) -> DriverSql:
        """``stmt`` compiled for ``dialect``'s driver with positional parameters. ``columns``: an INSERT's or
        UPDATE's columns given by each row (SQLAlchemy's ``column_keys``; None: all of the table's).
        ``typed``: each value through its type's bind processor, as ``conn.execute`` sends it (JSON's text,
        SQLite's DateTime string, Float's ``float(value)``); False: the rows hold what the driver takes, passed
        as they are (a hot statement's floats, ints and strings: no Python call per value). Raises
        :class:`DriverSqlError`, naming ``name``, for a value bound in the statement instead of the row."""
        compiled = stmt.compile(dialect=_positional(dialect, name),
                                **({} if columns is None else {"column_keys": list(columns)}))
        bad = sorted({f"{compiled.bind_names.get(bind, bind.key)}={bind.value!r}" for bind in compiled.binds.values()
                      if bind.unique or bind.expanding or bind.literal_execute or bind.callable is not None
                      or (bind.value is not None and not bind.required)})
        if bad:
            raise DriverSqlError(
                f"{name}: values bound in the statement, not taken from each row ({', '.join(bad)}) in "
                f"{_short(compiled.string)!r}; give each as sa.bindparam('<name>') and the value in every row, "
                "a constant as sa.null() or sa.literal_column(...), or run it through conn.execute")
        keys = tuple(compiled.positiontup or ())
        processors = [compiled.binds[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys
                      ] if typed else None
        dbapi = getattr(dialect, "dbapi", None)
        return cls(name, compiled.string, keys, fields=fields, processors=processors,
                   paramstyle=compiled.dialect.paramstyle, limit=parameter_limit(dialect), max_rows=max_rows,
                   dbapi_error=getattr(dbapi, "Error", Exception))

    def __repr__(self) -> str:
        return f"DriverSql({self.name!r}, {_short(self.sql)!r}, keys={self.keys!r})"

    def _picker(self, processors: Sequence[Callable[[Any], Any] | None] | None,
                ) -> Callable[[Row], Sequence[Any]] | None:
        keys = self.keys
        if self.fields is None:
            index: Sequence[Any] = keys
        else:
            missing = [key for key in keys if key not in self.fields]
            if missing:
                raise DriverSqlError(f"{self.name}: the statement takes {', '.join(map(repr, missing))}, not among "
                                     f"the rows' fields {self.fields!r}")
            index = [self.fields.index(key) for key in keys]
        base: Callable[[Row], Sequence[Any]] | None
        if self.fields is not None and list(index) == list(range(len(self.fields))):
            base = None  # the row is already in the statement's order
        elif not keys:
            base = _nothing
        elif len(keys) == 1:
            getter = itemgetter(index[0])
            base = lambda row: (getter(row),)  # noqa: E731
        else:
            base = itemgetter(*index)
        procs = list(processors or ())
        if not any(procs):
            return base
        pairs = [(i, p) for i, p in enumerate(procs) if p is not None]

        def pick(row: Row) -> Sequence[Any]:  # the values as the column types would send them (JSON's text...)
            values = list(row if base is None else base(row))
            for i, process in pairs:
                values[i] = process(values[i])
            return values

        return pick

    def _row(self, row: Row) -> Sequence[Any]:
        try:
            return self.params(row)
        except (KeyError, IndexError) as exc:
            raise DriverSqlError(f"{self.name}: a row without {exc.args[0]!r} (the statement takes {self.keys!r}): "
                                 f"{row!r}") from None

    def _flat(self, rows: Sequence[Row], pick: Callable[[Row], Sequence[Any]] | None) -> list[Any]:
        """The rows' parameters, concatenated (one frame for all rows; a bad row found again by :meth:`_row`)."""
        if pick is None:
            return [value for row in rows for value in row]
        try:
            return [value for row in rows for value in pick(row)]
        except (KeyError, IndexError):
            for row in rows:
                self._row(row)
            raise

    def error(self, exc: Exception, params: Any = None, sql: str | None = None) -> Exception:
        """The driver's ``exc`` as SQLAlchemy raises it through ``conn.execute`` (naming the statement)."""
        return sa.exc.DBAPIError.instance(sql or self.sql, params, exc, self.dbapi_error)

    def execute(self, cursor: Any, row: Row = ()) -> Any:
        """The statement for ``row`` on ``cursor``; returns the cursor (``.fetchone()``, ``.fetchall()``)."""
        try:
            params = self.params(row)
        except (KeyError, IndexError):
            self._row(row)  # raises, naming the row
            raise
        try:
            cursor.execute(self.sql, params)
        except self.dbapi_error as exc:
            raise self.error(exc, params) from exc
        return cursor

    def executemany(self, cursor: Any, rows: Sequence[Row]) -> None:
        """The statement once per row, by the driver's ``executemany`` (no rows returned)."""
        if not rows:
            return
        pick = self._pick
        if pick is None:
            params: Sequence[Any] = rows
        else:
            try:
                params = [pick(row) for row in rows]
            except (KeyError, IndexError):
                for row in rows:
                    self._row(row)  # raises, naming the row
                raise
        try:
            cursor.executemany(self.sql, params)
        except self.dbapi_error as exc:
            raise self.error(exc, params) from exc

    def execute_rows(self, cursor: Any, rows: Sequence[Row]) -> list[Any]:
        """``rows`` in multi-row statements of at most :attr:`rows_per_statement` rows each, in order; returns
        what the statements return (``RETURNING``), concatenated (empty for a statement returning none)."""
        step, n = self.rows_per_statement, len(rows)
        if n <= step:  # one statement (a batch of a simulated day): no chunking, no concatenation
            if not n:
                return []
            sql = self._many.get(n) or self.rows_sql(n)
            params = self._flat(rows, self._pick)
            try:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description is not None else []
            except self.dbapi_error as exc:
                raise self.error(exc, params, sql) from exc
        out: list[Any] = []
        for at in range(0, n, step):
            out += self.execute_rows(cursor, rows[at:at + step])
        return out

    def rows_sql(self, n: int) -> str:
        """The statement with ``n`` rows in its VALUES clause (its one group of placeholders repeated): the
        parameters are the rows' ``params``, concatenated. Built once per ``n``."""
        found = self._many.get(n)
        if found is None:
            if not 1 <= n <= self.rows_per_statement:
                raise DriverSqlError(f"{self.name}: {n} rows in one statement (1 to {self.rows_per_statement})")
            head, group, tail = self._group or self._values_group()
            found = self._many[n] = f"{head}{', '.join([group] * n)}{tail}"
        return found

    def _values_group(self) -> tuple[str, str, str]:
        sql, mark = self.sql, _PLACEHOLDERS.get(self.paramstyle)
        found = list(_VALUES.finditer(sql))
        if mark is None or len(found) != 1:
            raise DriverSqlError(f"{self.name}: no single VALUES group of {self.paramstyle} parameters to repeat "
                                 f"in {_short(sql)!r}")
        start = found[0].end() - 1
        depth, end = 0, start
        for end in range(start, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
        group = sql[start:end + 1]
        if depth or "'" in group or not group.count(mark) == sql.count(mark) == len(self.keys):
            raise DriverSqlError(f"{self.name}: the VALUES group of {_short(sql)!r} does not hold every parameter "
                                 "(one row's values are all its parameters)")
        self._group = (sql[:start], group, sql[end + 1:])
        return self._group


def _as_is(row: Row) -> Sequence[Any]:
    return row


def _nothing(row: Row) -> Sequence[Any]:
    return ()


class DriverStatement:
    """A Core statement compiled once per dialect for its driver's cursor: ``build(dialect)`` gives the
    statement (or ``build`` is the statement), :meth:`on` its :class:`DriverSql` for a connection's dialect
    (the last one's kept at hand; each dialect's until the dialect is gone)."""

    def __init__(self, name: str, build: Callable[[Dialect], Any] | Any, *, columns: Sequence[str] | None = None,
                 fields: Sequence[str] | None = None, typed: bool = True, max_rows: int = MAX_ROWS) -> None:
        self.name = name
        self._build: Callable[[Dialect], Any] = build if callable(build) else (lambda dialect: build)
        self._options: dict[str, Any] = {"columns": columns, "fields": fields, "typed": typed, "max_rows": max_rows}
        self._compiled: weakref.WeakKeyDictionary[Dialect, DriverSql] = weakref.WeakKeyDictionary()
        self._last: tuple[Dialect, DriverSql] | None = None

    def __repr__(self) -> str:
        return f"DriverStatement({self.name!r})"

    def on(self, conn: Connection) -> DriverSql:
        last = self._last
        if last is not None and last[0] is conn.dialect:
            return last[1]
        return self.for_dialect(conn.dialect)

    def for_dialect(self, dialect: Dialect) -> DriverSql:
        found = self._compiled.get(dialect)
        if found is None:
            found = self._compiled[dialect] = DriverSql.compile(self._build(dialect), dialect, name=self.name,
                                                                **self._options)
        self._last = (dialect, found)
        return found


class _DriverCursor:
    """:func:`driver_cursor`'s context manager (a class: cheaper than a generator's, twice a simulated batch)."""

    __slots__ = ("_conn", "_cursor")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __enter__(self) -> Any:
        conn = self._conn
        if not conn.in_transaction():
            conn.begin()
        self._cursor = conn.connection.cursor()
        return self._cursor

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()


def driver_cursor(conn: Connection) -> AbstractContextManager[Any]:
    """A cursor of ``conn``'s DBAPI connection, inside ``conn``'s SQLAlchemy transaction (begun here when none
    is, as ``conn.execute`` would: ``conn.commit()`` commits what it ran), closed at the end."""
    return _DriverCursor(conn)
