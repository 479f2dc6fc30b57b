"""A plant's own panel on the dashboard (``forge_dashboard_panel``): fields and tables, as data.

A panel is data, not HTML: the page draws every plant's panel with the same code, so a plugin
needs no JavaScript and a panel cannot inject markup (every value is shown as text)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Panel", "PanelTable", "instances_of", "status_of"]


@dataclass
class PanelTable:
    """One table: ``rows`` are lists of cells, one per column. A cell that is a status word
    (UP, DOWN, DEGRADED, WORKING, KILLED, running, failed ...) is coloured by the page."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass
class Panel:
    """What ``forge_dashboard_panel`` returns: a title, label -> value fields and tables."""

    title: str
    fields: dict[str, Any] = field(default_factory=dict)
    tables: list[PanelTable] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "fields": {str(k): _cell(v) for k, v in self.fields.items()},
                "tables": [{"title": t.title, "columns": [str(c) for c in t.columns],
                            "rows": [[_cell(c) for c in row] for row in t.rows]} for t in self.tables]}


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return round(value, 3)
    return str(value)


def check_panel(result: object) -> str | None:
    """Why a hook's answer is not a panel, or None (the plugin manager names the plugin)."""
    if result is None or isinstance(result, Panel):
        if isinstance(result, Panel):
            for table in result.tables:
                bad = [i for i, row in enumerate(table.rows) if len(row) != len(table.columns)]
                if bad:
                    return (f"panel {result.title!r}, table {table.title!r}: row {bad[0]} has "
                            f"{len(table.rows[bad[0]])} cells for {len(table.columns)} columns")
        return None
    return f"returned {type(result).__name__}, expected a forge_core.dashboard.Panel or None"


def instances_of(runtime: Any, component_type: str) -> list[tuple[str, str, Any]]:
    """(instance name, supervisor state, live instance or None) of every instance of this process
    whose manifest component has type ``component_type`` — what a panel hook reads."""
    found = []
    components = runtime.manifest.components
    for name, supervisor in runtime.supervisors.items():
        context = supervisor.context  # None while killed: the instance name says its component then
        component = context.component if context is not None else name
        if component not in components:
            component = name.rsplit("-", 1)[0]  # a replica: machine-1 of machine
        spec = components.get(component)
        if spec is not None and spec.type == component_type:
            found.append((name, supervisor.state, supervisor.instance))
    return found


#: supervisor state -> the page's status word (the same mapping as the components table)
def status_of(state: str) -> str:
    return {"running": "UP", "starting": "DEGRADED", "restarting": "DEGRADED"}.get(state, "DOWN")
