"""The pasta plant's panel on the web dashboard: machines, blades, stock levels, the leader.

Read from the ``pasta.monitor`` live view's state (its snapshot, the same as the terminal view
shows) and the machines' supervisor states, so a killed machine shows DOWN at once even while its
last beat is still fresh."""

from __future__ import annotations

from typing import Any

from forge_core.dashboard import Panel, PanelTable, instances_of, status_of
from pasta_plant.components.monitor import Monitor


def panel(runtime: Any) -> Panel | None:
    monitors = [instance for _, _, instance in instances_of(runtime, "pasta.monitor") if isinstance(instance, Monitor)]
    if not monitors:
        return None
    snap = monitors[0].snapshot()
    processes = {name: state for name, state, _ in instances_of(runtime, "pasta.cutting_machine")}
    machines = PanelTable("machines", ["machine", "instance", "state", "blade", "last beat", "last command"])
    for machine_id, m in snap["machines"].items():
        instance = f"machine-{machine_id}"
        state = processes.get(instance)
        machines.rows.append([machine_id, status_of(state) if state else "-", m["state"], m["blade"] or "-",
                              "-" if m["last_beat_ago"] is None else f"{m['last_beat_ago']} s ago",
                              m["commanded"] or "-"])
    stock = PanelTable("stock levels (%)", ["aFresh", "aDry", "bFresh", "bDry"])
    if snap["levels"]:
        stock.rows.append([round(snap["levels"][k], 1) for k in ("aFresh", "aDry", "bFresh", "bDry")])
    leader = snap["leader"]
    return Panel("pasta plant", {
        "leader": f"{leader['holder']} (epoch {leader['epoch']})" if leader else "none",
        "leader changes": snap["leader_changes"],
        "freshAmount": snap["fresh_amount"] if snap["fresh_amount"] is not None else "-",
        "assigns / swaps": f"{snap['assigns']} / {snap['swaps']}",
        "storage alerts": snap["alerts"],
        "chaos": "; ".join(f"{e.get('title')} {e.get('machineId', e.get('scheduler', ''))}"
                           for e in snap["chaos_events"]) or "-",
    }, [machines, stock])
