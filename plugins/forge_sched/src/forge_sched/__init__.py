"""forge-sched: production schedulers for Forge plants (the blade scheduler)."""

from forge_sched.blades.table import Machine
from forge_sched.components.blade_scheduler import (
    ASSIGN_BLADE,
    BLADE_SWAPPED,
    CHANGE_FRESH_AMOUNT,
    FRESH_AMOUNT_CHANGED,
    HEARTBEAT,
    STORAGE_ALERT,
    SWAP_BLADE,
    BladeScheduler,
)
from forge_sched.settings import BladeSchedulerParams, Targets, Topics

__version__ = "0.1.0"

#: Every message type forge_sched owns (its schemas are registered by the plugin).
MESSAGE_TYPES = (HEARTBEAT, ASSIGN_BLADE, SWAP_BLADE, BLADE_SWAPPED, CHANGE_FRESH_AMOUNT, FRESH_AMOUNT_CHANGED,
                 STORAGE_ALERT)

__all__ = ["ASSIGN_BLADE", "BLADE_SWAPPED", "CHANGE_FRESH_AMOUNT", "FRESH_AMOUNT_CHANGED", "HEARTBEAT",
           "MESSAGE_TYPES", "STORAGE_ALERT", "SWAP_BLADE", "BladeScheduler", "BladeSchedulerParams", "Machine",
           "Targets", "Topics", "__version__"]
