"""Fixtures for the order scheduler's modules: a migrated database (SQLite or a real PostgreSQL)
and an OrderService on it with a hand-driven clock."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from forge_core.storage import MigrationRegistry, create_engine_from_url, upgrade
from forge_core.tactics import RetryPolicy
from sqlalchemy import Engine

from forge_sched.orders.moves import Topics
from forge_sched.orders.service import OrderService
from forge_sched.orders.tables import outbox
from forge_sched.orders.transactions import Conflict, Transactor

MIGRATIONS = Path(__file__).resolve().parents[2] / "src" / "forge_sched" / "migrations"


def migrated(url: str) -> Engine:
    engine = create_engine_from_url(url)
    registry = MigrationRegistry(include_core=False)
    registry.add("sched", MIGRATIONS, plugin="forge-sched")
    upgrade(engine, registry)
    return engine


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, made once: each test gets a copy (migrating costs ~0.5 s)."""
    path = tmp_path_factory.mktemp("template") / "orders.db"
    migrated(f"sqlite:///{path}").dispose()
    return path


def sqlite_engine(template: Path, tmp_path: Path) -> Engine:
    shutil.copy(template, tmp_path / "orders.db")
    return create_engine_from_url(f"sqlite:///{tmp_path}/orders.db")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def engine(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """A migrated database: SQLite file, or a fresh database on the shared test PostgreSQL."""
    if request.param == "sqlite":
        engine = sqlite_engine(sqlite_template, tmp_path)
    else:
        engine = migrated(request.getfixturevalue("postgres_url"))
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_service(engine: Engine, make_service_on: Callable[..., OrderService]) -> Callable[..., OrderService]:
    """``make_service(epoch=None, max_attempts=3)``: a service on ``engine`` (epoch: the writer's lease epoch)."""
    return lambda **options: make_service_on(engine, **options)


@pytest.fixture
def make_service_on(clock: Clock) -> Callable[..., OrderService]:
    """``make_service_on(engine, epoch=None, max_attempts=3, default_capacity=2)``."""
    ids = itertools.count(1)

    def make(engine: Engine, *, epoch: int | None = None, max_attempts: int = 3, default_capacity: int = 2) -> OrderService:
        policy = RetryPolicy(max_attempts=max_attempts, initial=0.001, max_backoff=0.01, retry_on=(Conflict,),
                             seed=1)
        return OrderService(Transactor(engine, policy), topics=Topics("factory/{factory_id}/orders",
                                                                      "factory/{factory_id}/orders/revoked"),
                            created_topic="orders/created", now=clock.time, new_id=lambda: f"o{next(ids):04d}",
                            default_capacity=default_capacity, leader_epoch=lambda: epoch)

    return make


def queued(engine: Engine) -> list[tuple[str, str, dict[str, object]]]:
    """The outbox's messages (topic, type, payload), oldest first."""
    import json

    with engine.connect() as conn:
        return [(r.topic, r.type, json.loads(r.payload)) for r in conn.execute(sa.select(outbox).order_by(outbox.c.seq))]
