"""The Industry 4.0 plant's panel on the web dashboard: factories and the PMS's orders.

Factories from the ``industry40.factory`` instances (mode, capacity, orders held); orders from the
PMS instances' counters (``sched.order_scheduler``'s report: created, assigned, moved, replays)."""

from __future__ import annotations

from typing import Any

from forge_core.dashboard import Panel, PanelTable, instances_of, status_of
from industry40.components.factory import Factory

ORDER_FIELDS = ("created", "assigned", "moved", "revoked_to_pending", "idempotent_replays", "reports",
                "stale_reports")


def panel(runtime: Any) -> Panel | None:
    factories = instances_of(runtime, "industry40.factory")
    schedulers = instances_of(runtime, "sched.order_scheduler")
    if not factories and not schedulers:
        return None
    table = PanelTable("factories", ["factory", "instance", "mode", "capacity", "orders held", "most held", "errors"])
    for name, state, instance in factories:
        if isinstance(instance, Factory):
            report = instance.report()
            table.rows.append([report["factoryId"], status_of(state), report["mode"], report["capacity"],
                               report["held"], report["max_held"], report["errors"]])
        else:
            table.rows.append([name, status_of(state), "-", "-", "-", "-", "-"])
    orders = PanelTable("orders (PMS)", ["instance", "status", "leading", *ORDER_FIELDS])
    for name, state, instance in schedulers:
        report = instance.report() if instance is not None else {}
        leading = getattr(instance, "leading", None)
        orders.rows.append([name, status_of(state), "yes" if leading else "no",
                            *(report.get(key, 0) for key in ORDER_FIELDS)])
    up = sum(1 for row in table.rows if row[1] == "UP")
    return Panel("Industry 4.0 plant", {"factories up": f"{up} of {len(table.rows)}"}, [table, orders])
