"""What a leader saves and its successor takes over: the machine table, the fresh amount, the alert
cooldowns, the per-kind message counts ("offsets") and the last storage alert handled.

The component saves :func:`snapshot` with a fenced write (``state_store.save(STATE_KEY, ...,
epoch=...)``) before each batch of commands, and the successor :func:`merge`\\ s it into its own
view in ``on_elected`` so it does not re-assign what its predecessor assigned.

What is loaded is checked, record by record: a state written by an older version (a phantom
machine ``1.2345678901234568e+29``) or damaged in the store loses its bad records, each reported
in ``rejected`` (the component dead-letters them), and never makes the successor crash: a crash
there would repeat on every restart, and no replica would ever lead.
"""

from __future__ import annotations

import math
from typing import Any

from forge_core import DeadLetter, dead_letters

from forge_sched.blades.table import MachineTable

#: The key of the state in the scheduler's state-store namespace.
STATE_KEY = "state"


def snapshot(table: MachineTable, *, fresh_amount: int, cooldown_until: dict[str, float], offsets: dict[str, int],
             last_alert_id: str | None) -> dict[str, Any]:
    """What the successor needs: machines, fresh amount, cooldowns, offsets."""
    return {"machines": table.to_json(), "fresh_amount": fresh_amount, "cooldown_until": dict(cooldown_until),
            "offsets": dict(offsets), "last_alert_id": last_alert_id}


def merge(saved: Any, table: MachineTable, *, fresh_amount: int, cooldown_until: dict[str, float],
          offsets: dict[str, int], last_alert_id: str | None,
          rejected: list[tuple[str, str]] | None = None) -> tuple[int, str | None, int]:
    """Merge a :func:`snapshot` into this replica's view: ``table``, ``cooldown_until`` and
    ``offsets`` in place (the later of the two wins); returns ``(fresh_amount, last_alert_id,
    machines resumed)``, the saved fresh amount winning.

    Bad parts of ``saved`` are skipped and appended to ``rejected`` as ``(path, why)``."""
    problems: list[tuple[str, str]] = rejected if rejected is not None else []
    if not isinstance(saved, dict):
        problems.append(("/", f"the saved state is {type(saved).__name__}, not an object"))
        return fresh_amount, last_alert_id, 0
    resumed = table.merge(_section(saved, "machines", problems), rejected=problems)
    for kind, until in _section(saved, "cooldown_until", problems).items():
        if isinstance(until, bool) or not isinstance(until, int | float) or not math.isfinite(until):
            problems.append((f"cooldown_until/{kind}", f"{str(until)[:40]!r} is not a finite number"))
            continue
        cooldown_until[kind] = max(float(until), cooldown_until.get(kind, float("-inf")))
    for kind, count in _section(saved, "offsets", problems).items():
        if type(count) is not int or count < 0:
            problems.append((f"offsets/{kind}", f"{str(count)[:40]!r} is not a count (an integer >= 0)"))
            continue
        offsets[kind] = max(count, offsets.get(kind, 0))
    if "fresh_amount" in saved:
        amount = saved["fresh_amount"]
        if type(amount) is int and amount >= 0:
            fresh_amount = amount
        else:
            problems.append(("fresh_amount", f"{str(amount)[:40]!r} is not an integer >= 0; kept {fresh_amount}"))
    saved_alert = saved.get("last_alert_id")
    if saved_alert is not None and not isinstance(saved_alert, str):
        problems.append(("last_alert_id", f"{str(saved_alert)[:40]!r} is not a message id"))
        saved_alert = None
    return fresh_amount, last_alert_id or saved_alert, resumed


def _section(saved: dict[str, Any], name: str, problems: list[tuple[str, str]]) -> dict[str, Any]:
    """``saved[name]``, an object; ``{}`` (and a problem) if it is something else."""
    value = saved.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append((name, f"{type(value).__name__}, not an object"))
        return {}
    return value


def rejected_letters(rejected: list[tuple[str, str]], owner: str, now: float) -> list[DeadLetter]:
    """One ``invalid`` dead letter per saved record :func:`merge` skipped, with its path and why."""
    return [DeadLetter(dead_letters.INVALID, f"{owner}: saved state {STATE_KEY!r}, record {path} skipped on taking "
                       f"over: {why}", "", "", now, [{"pointer": f"/{path.strip('/')}", "message": why}], owner)
            for path, why in rejected]
