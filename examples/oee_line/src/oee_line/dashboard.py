"""The OEE line's panel on the web dashboard: the current shift's OEE per machine and for the line.

Read from the ``oee_line.oee`` instances' newest figures (what each publishes as ``oee_line.oee``
every interval, also its report), so the panel costs no query."""

from __future__ import annotations

from typing import Any

from forge_core.dashboard import Panel, PanelTable, instances_of, status_of


def panel(runtime: Any) -> Panel | None:
    calculators = instances_of(runtime, "oee_line.oee")
    if not calculators:
        return None
    table = PanelTable("OEE, current shift", ["scope", "shift", "OEE %", "availability %", "performance %",
                                               "quality %"])
    fields: dict[str, Any] = {}
    for name, state, instance in calculators:
        fields[name] = status_of(state)
        figures = instance.report() if instance is not None else {}
        for key, f in figures.items():
            table.rows.append([key, f["shift"], *(round(100 * f[k], 1) for k in ("oee", "availability", "performance",
                                                                                "quality"))])
    if not table.rows:
        fields["figures"] = "none yet (the first interval has not ended)"
    return Panel("OEE line", fields, [table])
