"""A small test plant: the mms components (their ``mms.*`` schemas registered by the plugin), and a
sensor reading and alert type of the plant's own."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from forge_core.testing import TestPlant

SENSOR_PLUGIN = '''
from forge_core import hookimpl


@hookimpl
def forge_register_schemas(registry):
    registry.add("test.reading", {"type": "object", "required": ["sensor", "values"],
                                  "properties": {"sensor": {"type": "string"}, "values": {"type": "object"}}})
    registry.add("test.stock_alert", {"type": "object", "required": ["aFresh", "aDry", "bFresh", "bDry"],
                                      "properties": {k: {"type": "number"} for k in ("aFresh", "aDry", "bFresh", "bDry")}})
    registry.add("test.sensor_alert", {"type": "object", "required": ["sensor", "value", "direction"],
                                       "additionalProperties": False,
                                       "properties": {"sensor": {"type": "string"}, "value": {"type": "number"},
                                                      "direction": {"enum": ["low", "high"]},
                                                      "note": {"type": "string"}}})
'''

MANIFEST = """
version: 1
plant: {{name: mms_test}}
plugins: [mms]
local_plugins: [sensors.py]
transports: {{bus: {{type: memory}}}}
default_transport: bus
components: {components}
storage: {{url: "sqlite:///{{plant_dir}}/plant.db", migrate_on_start: false}}
"""

BATCHES = """CREATE TABLE batches (id INTEGER PRIMARY KEY, blade_type VARCHAR(1) NOT NULL, is_fresh BOOLEAN NOT NULL,
                                   production_date TIMESTAMP, in_stock INTEGER NOT NULL)"""


@pytest.fixture
def mms_plant(tmp_path: Path) -> Iterator[Callable[..., TestPlant]]:
    """``mms_plant(components={...}, batches=[(blade, fresh, stock), ...])``: a started TestPlant."""
    plants: list[TestPlant] = []

    def make(components: dict[str, Any], *, batches: list[tuple[str, bool, int]] | None = None,
             seed: int = 1) -> TestPlant:
        root = tmp_path / f"plant{len(plants)}"
        root.mkdir()
        (root / "sensors.py").write_text(SENSOR_PLUGIN)
        (root / "plant.yaml").write_text(textwrap.dedent(MANIFEST.format(
            components=json.dumps(components))))
        if batches is not None:
            import sqlalchemy as sa

            engine = sa.create_engine(f"sqlite:///{root / 'plant.db'}")
            with engine.begin() as conn:
                conn.execute(sa.text(BATCHES))
                for blade, fresh, stock in batches:
                    conn.execute(sa.text("INSERT INTO batches (blade_type, is_fresh, production_date, in_stock) "
                                         "VALUES (:b, :f, '2024-01-01 00:00:00', :s)"),
                                 {"b": blade, "f": fresh, "s": stock})
            engine.dispose()
        plant = TestPlant(root, seed=seed)
        plants.append(plant)
        return plant.start()

    yield make
    for plant in plants:
        plant.stop()
