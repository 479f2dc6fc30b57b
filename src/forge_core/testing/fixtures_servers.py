"""Pytest fixtures backed by real servers (see :mod:`forge_core.testing.servers`).

Servers are session-scoped (one per test run, started on first use); ``postgres_url`` and
``redis_url`` give each test function a clean database. Tests that stop, kill or restart a
server should start their own instance instead of disturbing the shared one.

Load with ``pytest_plugins = ["forge_core.testing.fixtures_servers"]`` (the forge pytest11
plugin loads it too).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from forge_core.testing.postgres import PostgresServer
from forge_core.testing.redis import RedisServer
from forge_core.testing.servers import ServerProcess

__all__ = [
    "postgres_server", "postgres_url", "redis_server",
    "redis_url",
]

S = TypeVar("S", bound=ServerProcess)

# One instance per kind and test run, even when several conftests import these fixtures
# (each import is a separate fixture definition, and so would otherwise start its own server).
_SHARED: dict[str, ServerProcess] = {}


def shared_server(config: pytest.Config, kind: str, factory: Callable[[], S]) -> S:
    """One started server of ``kind`` per test run (session fixtures of plugins use it too),
    closed when the run ends."""
    server = _SHARED.get(kind)
    if server is None:
        server = factory().start()
        _SHARED[kind] = server

        def _close() -> None:
            _SHARED.pop(kind, None)
            server.close()

        config.add_cleanup(_close)
    return server  # type: ignore[return-value]


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> PostgresServer:
    """One PostgreSQL cluster for the whole test session."""
    return shared_server(pytestconfig, "postgres", PostgresServer)


def _database_name(nodeid: str) -> str:
    """A valid, unique-per-test database name: readable prefix plus a hash of the node id."""
    test = nodeid.rsplit("::", 1)[-1]
    slug = re.sub(r"[^a-z0-9_]+", "_", test.lower()).strip("_")[:40] or "test"
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:8]
    return f"t_{slug}_{digest}"


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLAlchemy URL of a fresh database named after the test; dropped afterwards."""
    if not postgres_server.running:  # a test stopped the shared server: bring it back
        postgres_server.start()
    name = _database_name(request.node.nodeid)
    url = postgres_server.create_database(name)
    yield url
    if postgres_server.running:
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def redis_server(pytestconfig: pytest.Config) -> RedisServer:
    """One Redis server for the whole test session."""
    return shared_server(pytestconfig, "redis", RedisServer)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of db 0 on the shared Redis, flushed before the test."""
    if not redis_server.running:
        redis_server.start()
    redis_server.flushall()
    return redis_server.url
