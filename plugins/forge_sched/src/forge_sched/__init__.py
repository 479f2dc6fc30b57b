"""forge-sched: production schedulers for Forge plants (the blade scheduler, the order scheduler)."""

from typing import TYPE_CHECKING

from forge_core.plugin import lazy_exports

if TYPE_CHECKING:
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

#: Every message type forge_sched owns (its schemas are registered by the plugin). Names of the constants, resolved on first use:
_MESSAGE_TYPES_OF = (
    "HEARTBEAT",
    "ASSIGN_BLADE",
    "SWAP_BLADE",
    "BLADE_SWAPPED",
    "CHANGE_FRESH_AMOUNT",
    "FRESH_AMOUNT_CHANGED",
    "STORAGE_ALERT",
    "CREATED",
    "ASSIGNED",
    "REVOKED",
    "PROGRESS",
    "COMPLETED",
    "STATUS_REPORT_RESULT",
    "ENDPOINT",
)

# Imported on first use: the entry point loads this package with its plugin module, and listing the
# plugins (forge --help) must not import the client libraries and models behind these names.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Machine": "forge_sched.blades.table:Machine",
        "ASSIGN_BLADE": "forge_sched.components.blade_scheduler:ASSIGN_BLADE",
        "BLADE_SWAPPED": "forge_sched.components.blade_scheduler:BLADE_SWAPPED",
        "CHANGE_FRESH_AMOUNT": "forge_sched.components.blade_scheduler:CHANGE_FRESH_AMOUNT",
        "FRESH_AMOUNT_CHANGED": "forge_sched.components.blade_scheduler:FRESH_AMOUNT_CHANGED",
        "HEARTBEAT": "forge_sched.components.blade_scheduler:HEARTBEAT",
        "STORAGE_ALERT": "forge_sched.components.blade_scheduler:STORAGE_ALERT",
        "SWAP_BLADE": "forge_sched.components.blade_scheduler:SWAP_BLADE",
        "BladeScheduler": "forge_sched.components.blade_scheduler:BladeScheduler",
        "ASSIGNED": "forge_sched.components.order_scheduler:ASSIGNED",
        "COMPLETED": "forge_sched.components.order_scheduler:COMPLETED",
        "CREATED": "forge_sched.components.order_scheduler:CREATED",
        "ENDPOINT": "forge_sched.components.order_scheduler:ENDPOINT",
        "PROGRESS": "forge_sched.components.order_scheduler:PROGRESS",
        "REVOKED": "forge_sched.components.order_scheduler:REVOKED",
        "STATUS_REPORT_RESULT": "forge_sched.components.order_scheduler:STATUS_REPORT_RESULT",
        "OrderScheduler": "forge_sched.components.order_scheduler:OrderScheduler",
        "StatusHandler": "forge_sched.orders.status:StatusHandler",
        "StatusReportResult": "forge_sched.orders.status:StatusReportResult",
        "BladeSchedulerParams": "forge_sched.settings:BladeSchedulerParams",
        "OrderSchedulerParams": "forge_sched.settings:OrderSchedulerParams",
        "OrderTopics": "forge_sched.settings:OrderTopics",
        "Targets": "forge_sched.settings:Targets",
        "Topics": "forge_sched.settings:Topics",
    },
    tuples={"MESSAGE_TYPES": _MESSAGE_TYPES_OF},
)


__version__ = "0.1.0"

__all__ = [
    "ASSIGNED",
    "ASSIGN_BLADE",
    "BLADE_SWAPPED",
    "CHANGE_FRESH_AMOUNT",
    "COMPLETED",
    "CREATED",
    "ENDPOINT",
    "FRESH_AMOUNT_CHANGED",
    "HEARTBEAT",
    "MESSAGE_TYPES",
    "PROGRESS",
    "REVOKED",
    "STATUS_REPORT_RESULT",
    "STORAGE_ALERT",
    "SWAP_BLADE",
    "BladeScheduler",
    "BladeSchedulerParams",
    "Machine",
    "OrderScheduler",
    "OrderSchedulerParams",
    "OrderTopics",
    "StatusHandler",
    "StatusReportResult",
    "Targets",
    "Topics",
    "__version__",
]
