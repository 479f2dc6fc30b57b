"""Test helpers of the industry40 plant: the real plant.yaml copied into a temporary directory with its
own database, trimmed to the components a test wants (and to those whose plugins are installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from forge_core.plugin import get_plugin_manager

PLANT = Path(__file__).resolve().parents[2]  # examples/industry40 (an editable install)


def registered_types() -> set[str]:
    plugins = get_plugin_manager()
    plugins.collect()
    return set(plugins.components.names())


def derive(tmp: Path, *, keep: tuple[str, ...] | None = None, drop: tuple[str, ...] = (),
           params: dict[str, dict[str, Any]] | None = None, **top: Any) -> Path:
    """Write a copy of the plant's manifest into ``tmp`` (components in ``keep``, or all but ``drop``)."""
    doc = yaml.safe_load((PLANT / "plant.yaml").read_text())
    available = registered_types()
    for name, spec in list(doc["components"].items()):
        if (keep is not None and name not in keep) or name in drop or spec["type"] not in available:
            del doc["components"][name]
    for name, extra in (params or {}).items():
        doc["components"][name].setdefault("params", {}).update(extra)
    doc["schemas"] = [str(PLANT / "schemas")]
    doc["storage"] = {"url": f"sqlite:///{tmp}/industry40.db", "migrate_on_start": True}
    doc.update(top)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp
