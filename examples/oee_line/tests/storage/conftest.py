"""A database migrated to oee_line's head: SQLite, or a fresh database on the shared test PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from forge_core.storage import MigrationRegistry, create_engine_from_url, upgrade

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "oee_line" / "migrations"


def migrated(url: str) -> Engine:
    engine = create_engine_from_url(url)
    registry = MigrationRegistry(include_core=False)
    registry.add("oee_line", MIGRATIONS, plugin="forge-example-oee-line")
    upgrade(engine, registry)
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def series_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with the oee_line tables (migration oee_line_0001)."""
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
