"""A database migrated to oee_line's head: SQLite, a fresh database on the shared test PostgreSQL, or a fresh
schema on the TimescaleDB test server (PGlite with TimescaleDB, oee_line.storage.timescale_server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from oee_line.storage.timescale_server import TimescaleServer
from sqlalchemy import Engine

from forge_core.storage import MigrationRegistry, create_engine_from_url, upgrade
from forge_core.testing import shared_server

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "oee_line" / "migrations"


def registry() -> MigrationRegistry:
    registry = MigrationRegistry(include_core=False)
    registry.add("oee_line", MIGRATIONS, plugin="forge-example-oee-line")
    return registry


def migrated(url: str | Engine) -> Engine:
    engine = url if isinstance(url, Engine) else create_engine_from_url(url)
    upgrade(engine, registry())
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def series_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with the oee_line tables (oee_line's migrations to head)."""
    url = f"sqlite:///{tmp_path}/oee.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = migrated(url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_series_db(postgres_url: str) -> Iterator[Engine]:
    """The same on PostgreSQL only, for what only PostgreSQL does (the OEE window's reduction in SQL)."""
    engine = migrated(postgres_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def timescale_server(pytestconfig: pytest.Config) -> TimescaleServer:
    """One TimescaleDB test server for the run (5-10 s to start: the WASM build loads), with the extension
    created in ``public`` first thing (a migration in a test's schema would put it there, and dropping the
    schema would drop it: TimescaleDB cannot be created again in the same session)."""
    def start() -> TimescaleServer:
        server = TimescaleServer().start()
        engine = create_engine_from_url(server.url, **TimescaleServer.engine_kwargs())
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS timescaledb SCHEMA public"))
        engine.dispose()
        return server

    return shared_server(pytestconfig, "timescale", start)


def schema_engine(server: TimescaleServer, name: str) -> Iterator[Engine]:
    """An engine on a schema of its own (the server has one database), not migrated; dropped afterwards.
    The server's single session outlives connections, so the schema is chosen by ``SET search_path``."""
    schema = "t_" + "".join(c if c.isalnum() else "_" for c in name.lower())[:40]
    engine = create_engine_from_url(server.url, **TimescaleServer.engine_kwargs())
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    def search_path(dbapi: Any, record: Any) -> None:
        dbapi.execute(f"SET search_path TO {schema}, public")
        dbapi.commit()  # not undone by the pool's rollback: the session keeps it

    sa.event.listen(engine, "connect", search_path)
    engine.dispose()  # the next connection is made with the search path
    yield engine
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        conn.execute(sa.text("SET search_path TO public"))
    engine.dispose()


@pytest.fixture
def ts_engine(timescale_server: TimescaleServer, request: pytest.FixtureRequest) -> Iterator[Engine]:
    yield from schema_engine(timescale_server, request.node.name)


@pytest.fixture
def ts_series_db(ts_engine: Engine) -> Engine:
    """The oee_line tables on TimescaleDB: a hypertable and continuous aggregates (migration oee_line_0002)."""
    return migrated(ts_engine)
