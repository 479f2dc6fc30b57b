"""A copy of the plant's manifest whose chaos profile can be tuned per test (plant dir, outbox and database in tmp)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PLANT = Path(__file__).resolve().parents[2]


def chaos_plant(tmp: Path, *, chaos: dict[str, Any] | None = None, persistence: bool | None = None,
                audit: dict[str, Any] | None = None, edge: dict[str, Any] | None = None) -> Path:
    doc = yaml.safe_load((PLANT / "plant.yaml").read_text())
    profile = doc["profiles"]["chaos"]
    profile["storage"] = {"url": f"sqlite:///{tmp}/oee_sim.db", "migrate_on_start": True}
    components = profile["components"]
    components["chaos"]["params"].update(chaos or {})
    components["audit"]["params"].update(audit or {})
    components["edge"]["params"].update(edge or {})
    if persistence is not None:
        for name in ("edge", "host"):
            components[name]["params"]["persistence"] = persistence
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp
