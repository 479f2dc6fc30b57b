"""Fixtures of the sensor monitoring plant's tests (helpers: ``sensor_monitoring.testing``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sensor_monitoring.testing import derive

from forge_core.testing import TestPlant


@pytest.fixture
def sensor_plant(tmp_path: Path) -> Iterator[Callable[..., TestPlant]]:
    """``sensor_plant(keep=(...), params={...}, seed=1)`` -> a started TestPlant under virtual time (stopped at
    teardown); its directory (data dir, SQLite) is ``tmp_path/plant<N>``, or ``directory=`` to reuse one."""
    plants: list[TestPlant] = []

    def make(*, seed: int = 1, profile: str | None = None, directory: Path | None = None,
             **options: Any) -> TestPlant:
        where = directory or tmp_path / f"plant{len(plants)}"
        if directory is None or not (where / "plant.yaml").exists():
            derive(where, **options)
        plant = TestPlant(where, seed=seed, profile=profile).start()
        plants.append(plant)
        return plant

    yield make
    for plant in plants:
        plant.stop()
