"""forge-sched: production schedulers for Forge plants (the blade scheduler, the order scheduler)."""

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
from forge_sched.components.order_scheduler import (
    ASSIGNED,
    COMPLETED,
    CREATED,
    ENDPOINT,
    PROGRESS,
    REVOKED,
    STATUS_REPORT_RESULT,
    OrderScheduler,
)
from forge_sched.orders.status import StatusHandler, StatusReportResult
from forge_sched.settings import BladeSchedulerParams, OrderSchedulerParams, OrderTopics, Targets, Topics

__version__ = "0.1.0"

#: Every message type forge_sched owns (its schemas are registered by the plugin).
MESSAGE_TYPES = (HEARTBEAT, ASSIGN_BLADE, SWAP_BLADE, BLADE_SWAPPED, CHANGE_FRESH_AMOUNT, FRESH_AMOUNT_CHANGED,
                 STORAGE_ALERT, CREATED, ASSIGNED, REVOKED, PROGRESS, COMPLETED, STATUS_REPORT_RESULT, ENDPOINT)

__all__ = ["ASSIGNED", "ASSIGN_BLADE", "BLADE_SWAPPED", "CHANGE_FRESH_AMOUNT", "COMPLETED", "CREATED",
           "ENDPOINT", "FRESH_AMOUNT_CHANGED", "HEARTBEAT", "MESSAGE_TYPES", "PROGRESS", "REVOKED", "STATUS_REPORT_RESULT",
           "STORAGE_ALERT", "SWAP_BLADE", "BladeScheduler", "BladeSchedulerParams", "Machine", "OrderScheduler",
           "OrderSchedulerParams", "OrderTopics", "StatusHandler", "StatusReportResult", "Targets", "Topics",
           "__version__"]
