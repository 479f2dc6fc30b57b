"""Params schemas of the pasta components (``components.<name>.params`` in plant.yaml).

The defaults are the numbers of the original system.
"""

from __future__ import annotations

from typing import Any


def _obj(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _seconds(default: float, description: str) -> dict[str, Any]:
    return {"type": "number", "exclusiveMinimum": 0, "default": default, "description": description}


MACHINE = _obj({
    "heartbeat_interval": _seconds(5.0, "seconds between heartbeats on `heartbeats`"),
    "swap_time": {"type": "number", "minimum": 0, "default": 2.0, "description": "seconds a blade swap takes"},
    "recovery_time": _seconds(10.0, "seconds in RECOVERY after a KillMachine"),
    "beat_in_recovery": {"type": "boolean", "default": False,
                         "description": "keep beating while in RECOVERY (the original machine is silent)"},
    "machine_id_offset": {"type": "integer", "minimum": 0, "default": 0,
                          "description": "machineId = replica + this (several machine groups in one plant)"},
    "lease": {"type": "string", "default": "scheduler", "description": "the lease whose epochs fence commands"},
})

SORTING = _obj({
    "fresh_amount": {"type": "integer", "minimum": 0, "maximum": 10, "default": 4,
                     "description": "fresh units of every 10 a heartbeat produces"},
    "min_amount": {"type": "integer", "minimum": 0, "default": 0},
    "max_amount": {"type": "integer", "minimum": 0, "default": 10},
})

PRODUCTION = _obj({
    "stock_target": {"type": "integer", "minimum": 0, "default": 200,
                     "description": "total stock the reductions bring storage back to"},
    "batch_size": {"type": "integer", "minimum": 1, "default": 10,
                   "description": "units per heartbeat: fresh = freshAmount, dry = batch_size - freshAmount"},
    "fresh_amount": {"type": "integer", "minimum": 0, "maximum": 10, "default": 4,
                     "description": "the share assumed until the first FreshAmountChanged"},
    "category_capacity": {"type": "number", "exclusiveMinimum": 0, "default": 100,
                           "description": "units that make 100 % of one category (A/B x fresh/dry)"},
    "publish_new_batch": {"type": "boolean", "default": False,
                          "description": "publish pasta.new_batch on storage/newBatch for every batch"},
    "fresh_start": {"type": "boolean", "default": True,
                    "description": "on the first start of a run, bring storage back to the seed stock "
                                   "(20 batches of 10); false keeps the stock of earlier runs"},
})

CHAOS = _obj({
    "enabled": {"type": "boolean", "default": False, "description": "off unless a profile (chaos) turns it on"},
    "min_interval": _seconds(5.0, "shortest wait between two kills"),
    "max_interval": _seconds(15.0, "longest wait between two kills"),
    "min_restart": _seconds(10.0, "shortest time a killed part stays dead"),
    "max_restart": _seconds(30.0, "longest time a killed part stays dead"),
    "max_machines": {"type": "integer", "minimum": 0, "default": 1, "description": "machines dead at once"},
    "max_schedulers": {"type": "integer", "minimum": 0, "default": 1, "description": "schedulers dead at once"},
    "machines": {"type": "string", "default": "machine", "description": "the machines' component name"},
    "schedulers": {"type": "string", "default": "scheduler", "description": "the schedulers' component name"},
    "lease": {"type": "string", "default": "scheduler", "description": "the schedulers' lease"},
    "machine_kill": {"enum": ["process", "command"], "default": "process",
                     "description": "process: runtime.kill (SIGKILL); command: KillMachine -> RECOVERY"},
    "rebalance_bound": _seconds(32.0, "seconds after a machine death by which both blades must be cut "
                                      "again (discovery 12 + health check 5 + timeout 10 + swap 2 + beat)"),
    "failover_bound": {"type": ["number", "null"], "default": None,
                       "description": "seconds a successor may take to lead (default: lease ttl + retry_every "
                                      "+ 1)"},
    "check_every": _seconds(0.5, "how often the leader and the blade coverage are looked at"),
})

MONITOR = _obj({
    "render": {"enum": ["auto", "always", "never"], "default": "auto",
               "description": "auto: a rich live view when stdout is a terminal and the clock is real"},
    "refresh": _seconds(1.0, "seconds between redraws of the live view (only drawn on a terminal, real clock)"),
    "rate_window": _seconds(10.0, "seconds over which message rates are measured"),
    "keep_events": {"type": "integer", "minimum": 1, "default": 10, "description": "alerts and chaos events kept"},
    "lease": {"type": "string", "default": "scheduler"},
})
