"""Params JSON Schemas of the forge_sched components (validated by ``forge validate``).

Every number of the pasta seed's scheduler is a param with the seed's value as its default, so a
plant can tune it without touching code.
"""

from __future__ import annotations

from typing import Any

_NUMBER = {"type": "number", "exclusiveMinimum": 0}

BLADE_SCHEDULER_PARAMS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "lease": {"type": "string", "minLength": 1, "default": "scheduler",
                  "description": "leader-election lease shared by the active and the shadow"},
        "discovery_time": {**_NUMBER, "default": 12.0,
                           "description": "seconds of listening to heartbeats before the first assignment"},
        "health_check_interval": {**_NUMBER, "default": 5.0,
                                  "description": "how often silent machines are removed and blades rebalanced"},
        "machine_timeout": {**_NUMBER, "default": 10.0,
                            "description": "a machine silent this long is removed"},
        "dedup_window": {**_NUMBER, "default": 1.0,
                         "description": "one heartbeat per machine per window is handled (tactics.dedup)"},
        "assign_interval": {**_NUMBER, "default": 5.0,
                            "description": "how often pending commands time out and missed assignments are caught up "
                                           "(waiting machines are assigned as soon as they are seen)"},
        "confirm_timeout": {**_NUMBER, "default": 20.0,
                            "description": "an assignment or swap no heartbeat confirmed within this is retried"},
        "alert_cooldown": {**_NUMBER, "default": 10.0,
                           "description": "seconds between two reactions of one kind (fresh amount, blade swap)"},
        "persist_interval": {**_NUMBER, "default": 5.0,
                             "description": "the leader saves its state this often, besides on every command"},
        "targets": {
            "type": "object", "additionalProperties": False,
            "default": {"fresh": 50.0, "dry": 50.0, "A": 50.0, "B": 50.0},
            "description": "target storage level per category, percent",
            "properties": {k: {"type": "number", "minimum": 0, "maximum": 100}
                           for k in ("fresh", "dry", "A", "B")},
        },
        "threshold": {"type": "number", "minimum": 0, "default": 10.0,
                      "description": "percentage points from target a category may be off without a reaction; "
                                     "more than twice this is far (step 4 instead of 2)"},
        "fresh_amount": {"type": "integer", "minimum": 0, "maximum": 10, "default": 4,
                         "description": "the sorting's fresh amount believed at start (confirmations update it)"},
        "fresh_amount_max": {"type": "integer", "minimum": 1, "default": 10,
                             "description": "upper clamp of the fresh amount (the sorting clamps to 0..10)"},
        "machine_sources": {"type": "string", "default": r"^(?:machine-)?(\d+)$",
                            "description": "regex whose group 1 is the machineId in a forge.status / forge.death "
                                           "source; other sources are ignored"},
        "topics": {
            "type": "object", "additionalProperties": False,
            "description": "the pasta protocol's topics (fixed by the plant; override only for another plant)",
            "default": {},
            "properties": {k: {"type": "string"} for k in (
                "heartbeats", "assign", "swap", "swapped", "change_fresh", "fresh_changed", "alert", "status",
                "death")},
        },
    },
}

#: Topic defaults of the pasta protocol (examples/pasta_plant/plant.yaml bindings).
DEFAULT_TOPICS: dict[str, str] = {
    "heartbeats": "heartbeats",
    "assign": "productionPlan/assignBlade",
    "swap": "productionPlan/swapBlade",
    "swapped": "productionPlan/bladeSwapped",
    "change_fresh": "sorting/changeFreshAmount",
    "fresh_changed": "sorting/freshAmountChanged",
    "alert": "storage/alert",
    "status": "forge/status/+",
    "death": "forge/death/+",
}


def with_defaults(schema: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` over the schema's top-level defaults (the runtime validates but does not fill)."""
    merged = {k: v["default"] for k, v in schema["properties"].items() if "default" in v}
    merged.update(params)
    return merged
