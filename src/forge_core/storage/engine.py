"""Database engines from a URL: SQLite by default (embedded), PostgreSQL when distributed.

One function turns a configured URL into a ready SQLAlchemy engine, so every part of Forge
(runtime, outbox, dead letters, plugins) gets the same pragmas, driver mapping and errors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from forge_core.errors import ForgeError

__all__ = ["DEFAULT_DATABASE_URL", "StorageError", "commit_without_fsync", "create_engine_from_url", "mask_url",
           "normalize_url"]

#: The embedded profile's database: one SQLite file inside the plant directory.
DEFAULT_DATABASE_URL = "sqlite:///{plant_dir}/.forge/forge.db"

_PG_ALIASES = ("postgres", "postgresql")  # drivername forms mapped to psycopg 3
_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^:/@]*:)(?P<pw>[^@]*)(?P<tail>@)")


class StorageError(ForgeError):
    """A database URL is malformed or its server cannot be reached. The password is masked."""


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ``***`` (works on URLs SQLAlchemy cannot parse)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", url)


def normalize_url(url: str, *, plant_dir: Path | None = None) -> URL:
    """Parse ``url``: substitute ``{plant_dir}``, map ``postgres(ql)://`` to psycopg 3, and
    resolve relative SQLite paths against ``plant_dir`` (so the CWD does not matter)."""
    if "{plant_dir}" in url:
        if plant_dir is None:
            raise StorageError(f"database URL {mask_url(url)!r} uses {{plant_dir}}, but no plant_dir given")
        url = url.replace("{plant_dir}", Path(plant_dir).resolve().as_posix())
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"invalid database URL {mask_url(url)!r}: {exc}") from None
    if parsed.drivername in _PG_ALIASES:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.is_absolute() and plant_dir is not None:
            parsed = parsed.set(database=str(Path(plant_dir).resolve() / path))
    return parsed


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run while the runtime writes; foreign keys are off by default in SQLite.
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, much faster than FULL
    finally:
        cursor.close()


def create_engine_from_url(
    url: str | None = None,
    *,
    plant_dir: Path | None = None,
    check: bool = True,
    **engine_kwargs: Any,
) -> Engine:
    """An engine for ``url`` (default: :data:`DEFAULT_DATABASE_URL`).

    SQLite: parent directories are created, WAL and foreign keys are enabled on every
    connection. PostgreSQL: ``postgresql://`` and ``postgres://`` use psycopg 3, with a
    10 s connect timeout unless the URL sets one. ``check`` connects once so a wrong URL
    or an unreachable server fails here, with the (masked) URL in the message, rather
    than at the first query deep inside a component.
    """
    parsed = normalize_url(url or DEFAULT_DATABASE_URL, plant_dir=plant_dir)
    shown = mask_url(parsed)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"pool_pre_ping": True, **engine_kwargs}
    if backend == "sqlite":
        if parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    elif parsed.drivername == "postgresql+psycopg" and "connect_timeout" not in parsed.query:
        kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", 10)
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except NoSuchModuleError as exc:
        raise StorageError(f"unsupported database URL {shown!r}: {exc}") from None
    except ModuleNotFoundError as exc:
        hint = ' (pip install "forge-core[postgres]")' if backend == "postgresql" else ""
        raise StorageError(f"database driver for {shown!r} is not installed: {exc.name}{hint}") from None
    except ArgumentError as exc:
        raise StorageError(f"invalid database URL {shown!r}: {exc}") from None
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    if check:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except OperationalError as exc:
            engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StorageError(f"cannot connect to database {shown!r}: {reason}") from None
    return engine


def create_tables(engine: Engine, tables: list[Any]) -> None:
    """``CREATE TABLE IF NOT EXISTS`` that tolerates another process creating them at the same
    moment (PostgreSQL reports the loser's duplicate as an error, not as "exists")."""
    try:
        tables[0].metadata.create_all(engine, tables=tables, checkfirst=True)
    except sa.exc.DBAPIError:
        inspector = sa.inspect(engine)
        if not all(inspector.has_table(t.name) for t in tables):
            raise


def commit_without_fsync(engine: Engine) -> None:
    """Make ``engine``'s SQLite connections commit without waiting for the disk (``synchronous=OFF``).

    For a simulated run only: no power cut can fall inside virtual time, and WAL checkpoints' fsyncs
    were most of a commit's cost. Every commit is still a commit (other connections and later lives
    see it); a real-clock run keeps the engine's ``synchronous=NORMAL``. Registered after the
    engine's own pragmas; the pooled connection ``create_engine_from_url`` checked with is dropped."""

    def off(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA synchronous=OFF")
        finally:
            cursor.close()

    sa.event.listen(engine, "connect", off)
    engine.dispose()
