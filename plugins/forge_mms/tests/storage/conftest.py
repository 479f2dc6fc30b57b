"""A database migrated to forge_mms's head: SQLite, or a fresh database on the shared test PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from forge_core.storage import MigrationRegistry, create_engine_from_url, upgrade
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "forge_mms" / "migrations"


def migrated(url: str) -> Engine:
    engine = create_engine_from_url(url)
    registry = MigrationRegistry(include_core=False)
    registry.add("mms", MIGRATIONS, plugin="forge-mms")
    upgrade(engine, registry)
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def sensor_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with the mms tables (migrations mms_0001, mms_0002)."""
    url = f"sqlite:///{tmp_path}/mms.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = migrated(url)
    yield engine
    engine.dispose()
