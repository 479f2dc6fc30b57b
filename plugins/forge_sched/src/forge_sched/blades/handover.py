"""What a leader saves and its successor takes over: the machine table, the fresh amount, the alert
cooldowns, the per-kind message counts ("offsets") and the last storage alert handled.

The component saves :func:`snapshot` with a fenced write (``state_store.save(STATE_KEY, ...,
epoch=...)``) before each batch of commands, and the successor :func:`merge`\\ s it into its own
view in ``on_elected`` so it does not re-assign what its predecessor assigned.
"""

from __future__ import annotations

from typing import Any

from forge_sched.blades.table import MachineTable

#: The key of the state in the scheduler's state-store namespace.
STATE_KEY = "state"


def snapshot(table: MachineTable, *, fresh_amount: int, cooldown_until: dict[str, float], offsets: dict[str, int],
             last_alert_id: str | None) -> dict[str, Any]:
    """What the successor needs: machines, fresh amount, cooldowns, offsets."""
    return {"machines": table.to_json(), "fresh_amount": fresh_amount, "cooldown_until": dict(cooldown_until),
            "offsets": dict(offsets), "last_alert_id": last_alert_id}


def merge(saved: dict[str, Any], table: MachineTable, *, fresh_amount: int, cooldown_until: dict[str, float],
          offsets: dict[str, int], last_alert_id: str | None) -> tuple[int, str | None, int]:
    """Merge a :func:`snapshot` into this replica's view: ``table``, ``cooldown_until`` and
    ``offsets`` in place (the later of the two wins); returns ``(fresh_amount, last_alert_id,
    machines resumed)``, the saved fresh amount winning."""
    resumed = table.merge(saved.get("machines") or {})
    for kind, until in (saved.get("cooldown_until") or {}).items():
        cooldown_until[kind] = max(until, cooldown_until.get(kind, float("-inf")))
    for kind, count in (saved.get("offsets") or {}).items():
        offsets[kind] = max(int(count), offsets.get(kind, 0))
    return (int(saved.get("fresh_amount", fresh_amount)), last_alert_id or saved.get("last_alert_id"), resumed)
