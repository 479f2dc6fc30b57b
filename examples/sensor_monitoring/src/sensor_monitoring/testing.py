"""Test helpers of the sensor monitoring plant: the real plant.yaml copied into a temporary directory
with its own database and data dir, trimmed to the components a test wants (and to those whose
plugins are installed), params overridden per component."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from forge_core.plugin import get_plugin_manager

PLANT = Path(__file__).resolve().parents[2]  # examples/sensor_monitoring (an editable install)


def registered_types() -> set[str]:
    plugins = get_plugin_manager()
    plugins.collect()
    return set(plugins.components.names())


def manifest() -> dict[str, Any]:
    """The plant's manifest as a document (a fresh copy)."""
    return copy.deepcopy(yaml.safe_load((PLANT / "plant.yaml").read_text()))


def derive(tmp: Path, *, keep: tuple[str, ...] | None = None, drop: tuple[str, ...] = (),
           params: dict[str, dict[str, Any]] | None = None, doc: dict[str, Any] | None = None, **top: Any) -> Path:
    """Write a copy of the plant's manifest (or ``doc``) into ``tmp``: components in ``keep``, or all but
    ``drop``; ``params`` merged over each named component's (top level keys replaced); the schemas
    pointed at the plant's; SQLite in ``tmp``. Returns ``tmp``."""
    doc = manifest() if doc is None else doc
    available = registered_types()
    for name, spec in list(doc["components"].items()):
        if (keep is not None and name not in keep) or name in drop or spec["type"] not in available:
            del doc["components"][name]
    for name, extra in (params or {}).items():
        doc["components"][name].setdefault("params", {}).update(extra)
    doc["schemas"] = [str(PLANT / "schemas")]
    doc["storage"] = {"url": f"sqlite:///{tmp}/sensor_monitoring.db", "migrate_on_start": True}
    doc.update(top)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp
