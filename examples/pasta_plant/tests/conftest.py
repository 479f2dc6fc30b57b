"""Fixtures of the pasta plant's tests (helpers: ``pasta_plant.testing``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pasta_plant.testing import derive

from forge_core.testing import TestPlant


@pytest.fixture
def pasta(tmp_path: Path) -> Iterator[Callable[..., TestPlant]]:
    """``pasta(seed=1, profile=None, drop=(), params={...})`` -> a started TestPlant (stopped at teardown)."""
    plants: list[TestPlant] = []

    def make(*, seed: int = 1, profile: str | None = None, name: str = "plant", **options: Any) -> TestPlant:
        directory = derive(tmp_path / f"{name}{len(plants)}", **options)
        plant = TestPlant(directory, seed=seed, profile=profile).start()
        plants.append(plant)
        return plant

    yield make
    for plant in plants:
        plant.stop()



@pytest.fixture(scope="module")
def pasta_schemas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The schema registry of a started pasta plant (sched.*, mms.*, pasta.*, forge.*)."""
    plant = TestPlant(derive(tmp_path_factory.mktemp("schemas")), seed=1).start()
    try:
        yield plant.runtime.bus.schemas
    finally:
        plant.stop()
