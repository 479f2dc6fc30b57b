"""The sensor plant's panel on the web dashboard: produced and stored readings with their rates,
reading -> stored time, active alerts, the processors' partitions, batch times and group lag.

Read from the ``sensor_monitoring.monitor`` live view's snapshot (the terminal view's figures); its
database reads happen on its own schedule, never per push."""

from __future__ import annotations

from typing import Any

from forge_core.dashboard import Panel, PanelTable, instances_of
from sensor_monitoring.components.monitor import Monitor


def _figure(value: Any, unit: str = "") -> str:
    return "-" if value is None else f"{value}{unit}"


def panel(runtime: Any) -> Panel | None:
    monitors = [m for _, _, m in instances_of(runtime, "sensor_monitoring.monitor") if isinstance(m, Monitor)]
    if not monitors or not hasattr(monitors[0], "polls"):  # not this plant, or not started yet
        return None
    snap = monitors[0].snapshot()
    ms = snap["processing_ms"]
    lag = snap["group_lag"] or {}
    fields = {
        "produced": f"{_figure(snap['produced'])} ({_figure(snap['produced_per_s'], '/s')})",
        "stored": f"{_figure(snap['stored'])} ({_figure(snap['stored_per_s'], '/s')})",
        "reading -> stored": f"mean {ms['mean']} ms, max {ms['max']} ms" if ms else "-",
        "active alerts": snap["active_alerts"],
        "group lag": f"{sum(v['lag'] for v in lag.values())} records" if lag else "-",
        "rebalances": snap["rebalances"],
    }
    if snap["db_error"]:
        fields["database"] = snap["db_error"]
    processors = PanelTable("processors", ["processor", "partitions held", "batch ms p50/max", "readings"])
    for name in sorted({*snap["assignments"], *snap["processors"]}):
        status = snap["processors"].get(name, {})
        batch = status.get("batch_ms")
        held = " ".join(f"{t}[{p}]" for t, p in snap["assignments"].get(name, [])) or "-"
        processors.rows.append([name, held, f"{batch['p50']}/{batch['max']}" if batch else "-",
                                _figure(status.get("readings"))])
    alerts = PanelTable("latest alerts", ["severity", "sensor", "rule"],
                        [[a.get("severity"), a.get("sensor"), a.get("rule")] for a in snap["latest_alerts"]])
    return Panel("sensor plant", fields, [processors, alerts])
