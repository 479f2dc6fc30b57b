"""Test helpers for the pasta plant: the real plant.yaml, copied into a temporary directory with its own
database, and trimmed to the components whose plugins are installed (forge-sched and forge-mms
may not be: then the tests publish the scheduler's commands themselves)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from forge_core.plugin import get_plugin_manager

PLANT = Path(__file__).resolve().parents[2]  # examples/pasta_plant (an editable install)
LEASE = {"forgelease": "scheduler"}


def registered_types() -> set[str]:
    plugins = get_plugin_manager()
    plugins.collect()
    return set(plugins.components.names())


def has(*types: str) -> bool:
    available = registered_types()
    return all(t in available for t in types)


SCHED = "sched.blade_scheduler"
MMS = "mms.storage_monitor"
needs_sched = pytest.mark.skipif(not has(SCHED), reason="forge-sched is not installed")
needs_full_plant = pytest.mark.skipif(not has(SCHED, MMS), reason="forge-sched and forge-mms are not installed")


def derive(tmp: Path, *, drop: tuple[str, ...] = (), params: dict[str, dict[str, Any]] | None = None,
           keep_unavailable: bool = False, **top: Any) -> Path:
    """Write a copy of the pasta plant's manifest into ``tmp`` and return the directory."""
    doc = yaml.safe_load((PLANT / "plant.yaml").read_text())
    available = registered_types()
    for name, spec in list(doc["components"].items()):
        if name in drop or (not keep_unavailable and spec["type"] not in available):
            del doc["components"][name]
    # a plugin stays listed while it is installed, even with its components dropped: the plant's
    # topics are typed with its message types (sched.*, mms.*)
    installed = {name.split(".")[0] for name in available}
    doc["plugins"] = [p for p in doc["plugins"] if p in installed]
    for name, extra in (params or {}).items():
        doc["components"][name].setdefault("params", {}).update(extra)
    doc["schemas"] = [str(PLANT / "schemas")]
    doc["storage"] = {"url": f"sqlite:///{tmp}/pasta.db", "migrate_on_start": True}
    doc.update(top)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp



def stamped(epoch: int) -> dict[str, str]:
    """Headers of a scheduler command of lease epoch ``epoch``."""
    return {"forgeepoch": str(epoch), **LEASE}
