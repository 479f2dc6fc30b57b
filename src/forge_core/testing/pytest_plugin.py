"""Forge's pytest plugin, loaded through the ``pytest11`` entry point.

Fixtures for plant and plugin authors:

- ``forge_plugins`` — a fresh plugin manager for the test; ``forge_plugins.register(obj, "name")``
  adds a temporary plugin in one line.
- ``forge_plant`` — a factory: ``plant = forge_plant("path/to/plant", seed=1)`` returns a
  started :class:`~forge_core.testing.TestPlant` (virtual clock, in-memory bus), stopped at
  teardown. It uses ``forge_plugins``, so plugins registered there take part.
- ``postgres_url``, ``redis_url`` … — real servers on 127.0.0.1, see
  :mod:`forge_core.testing.fixtures_servers` (transport plugins add their broker's fixture, e.g.
  ``mosquitto_server`` from ``forge_mqtt.testing``, through their own ``pytest11`` entry point).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from forge_core.plugins import Plugins, get_plugin_manager
from forge_core.testing.fixtures_servers import *  # noqa: F403 (re-export the server fixtures)
from forge_core.testing.plant import TestPlant


@pytest.fixture
def forge_plugins() -> Plugins:
    """A fresh plugin manager (built-ins and installed plugins) for this test."""
    return get_plugin_manager()


@pytest.fixture
def forge_plant(forge_plugins: Plugins) -> Iterator[Callable[..., TestPlant]]:
    """Start plants under test: ``forge_plant(path, seed=0, profile=None, only=None)``."""
    started: list[TestPlant] = []

    def start(plant: str | Path, **options: Any) -> TestPlant:
        options.setdefault("plugins", forge_plugins if not started else get_plugin_manager())
        test_plant = TestPlant(plant, **options).start()
        started.append(test_plant)
        return test_plant

    yield start
    for test_plant in reversed(started):
        test_plant.stop()


def pytest_report_header(config: pytest.Config) -> str:
    """What the session tests: "forge: pure Python" or "forge: compiled: N modules (mypyc)" (docs/compiled.md)."""
    from forge_core import compiled

    return "forge: " + compiled.summary(compiled.status())


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop before the first test when a compiled module's ``.so`` no longer matches its ``.py``: the tests
    would run the old code, silently (forge_core.compiled; rebuild or go pure Python, docs/compiled.md)."""
    from forge_core import compiled

    bad = compiled.problems(compiled.status())
    if bad:
        pytest.exit(compiled.stale_message(bad), returncode=pytest.ExitCode.USAGE_ERROR)
