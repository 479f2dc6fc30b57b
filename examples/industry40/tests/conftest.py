"""Fixtures of the industry40 plant's tests (helpers: ``industry40.testing``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from industry40.testing import derive

from forge_core.testing import TestPlant


@pytest.fixture
def plant40(tmp_path: Path) -> Iterator[Callable[..., TestPlant]]:
    """``plant40(keep=(...), params={...}, seed=1)`` -> a started TestPlant under virtual time (stopped at teardown)."""
    plants: list[TestPlant] = []

    def make(*, seed: int = 1, profile: str | None = None, **options: Any) -> TestPlant:
        directory = derive(tmp_path / f"plant{len(plants)}", **options)
        plant = TestPlant(directory, seed=seed, profile=profile).start()
        plants.append(plant)
        return plant

    yield make
    for plant in plants:
        plant.stop()
