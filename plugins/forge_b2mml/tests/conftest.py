"""``b2mml_plant(components)``: a small test plant with the b2mml components on the in-memory bus."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from forge_core.testing import TestPlant

MANIFEST = """
version: 1
plant: {{name: b2mml_test}}
plugins: [b2mml]
transports: {{bus: {{type: memory}}}}
default_transport: bus
components: {components}
storage: {{url: "sqlite:///{{plant_dir}}/plant.db", migrate_on_start: true}}
"""


def write_plant(root: Path, components: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "plant.yaml").write_text(MANIFEST.format(components=json.dumps(components)))
    return root


@pytest.fixture
def b2mml_plant(tmp_path: Path) -> Iterator[Callable[..., TestPlant]]:
    """``b2mml_plant(components, root=None)``: a started TestPlant (stopped at teardown); the same
    ``root`` again is the same plant restarted (its folders and database kept)."""
    plants: list[TestPlant] = []

    def make(components: dict[str, Any], *, root: Path | None = None) -> TestPlant:
        plant = TestPlant(write_plant(root or tmp_path / "plant", components), seed=1)
        plants.append(plant)
        return plant.start()

    yield make
    for plant in plants:
        plant.stop()
