"""The order scheduler's invariants, checked over the database at the end of a run.

* no order lost, none held by two factories at once: every held order has exactly one open
  assignment to the factory it names, no pending/completed order has one, and an order's
  assignments never overlap in time;
* no order held by a DOWN factory;
* every completed order completed once (a second completion is counted, never applied);
* stale-epoch status reports rejected: the epochs accepted per reporter lease never went back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from forge_core import Check
from sqlalchemy import Engine

from forge_sched.orders.tables import UNFINISHED, assignments, factories, orders, to_utc

__all__ = ["checks", "holder_problems"]


def holder_problems(engine: Engine, limit: int = 5) -> dict[str, list[str]]:
    """Violations by invariant (each list holds at most ``limit`` examples)."""
    found: dict[str, list[str]] = {"holders": [], "overlaps": [], "down": [], "completed": []}
    with engine.connect() as conn:
        open_rows = conn.execute(sa.select(assignments.c.order_id, assignments.c.factory_id)
                                 .where(assignments.c.revoked_at.is_(None))).all()
        held = {o.id: (o.status, o.factory_id) for o in conn.execute(sa.select(orders.c.id, orders.c.status,
                                                                                orders.c.factory_id))}
        history = conn.execute(sa.select(assignments.c.order_id, assignments.c.assigned_at, assignments.c.revoked_at)
                               .order_by(assignments.c.order_id, assignments.c.id)).all()
        down = conn.execute(sa.select(orders.c.id, orders.c.factory_id).join(
            factories, factories.c.id == orders.c.factory_id).where(
            orders.c.status.in_(UNFINISHED), factories.c.status == "DOWN").limit(limit)).all()
        incomplete = conn.execute(sa.select(orders.c.id).where(
            orders.c.status == "completed", sa.or_(orders.c.completed_at.is_(None),
                                                   orders.c.completed_by.is_(None))).limit(limit)).all()
    opened: dict[str, list[str]] = {}
    for order_id, factory_id in open_rows:
        opened.setdefault(order_id, []).append(factory_id)
    for order_id, (status, factory_id) in held.items():
        want = [factory_id] if status in UNFINISHED else []
        if sorted(opened.get(order_id, [])) != want:
            found["holders"].append(f"{order_id} ({status}, {factory_id}) open at {opened.get(order_id, [])}")
    previous: tuple[str, Any] | None = None
    for order_id, assigned_at, revoked_at in history:
        if previous is not None and previous[0] == order_id and (
                previous[1] is None or to_utc(previous[1]) > to_utc(assigned_at)):  # type: ignore[operator]
            found["overlaps"].append(f"{order_id} assigned at {assigned_at} before its previous holder let go")
        previous = (order_id, revoked_at)
    found["down"] = [f"{o.id} held by DOWN {o.factory_id}" for o in down]
    found["completed"] = [f"{o.id} completed without time or factory" for o in incomplete]
    return {kind: problems[:limit] for kind, problems in found.items()}


def checks(engine: Engine, stats: Mapping[str, int], accepted_epochs: Mapping[str, Sequence[int]]) -> list[Check]:
    found = holder_problems(engine)
    went_back = [f"{lease}: {epochs[i - 1]} then {epochs[i]}" for lease, epochs in accepted_epochs.items()
                 for i in range(1, len(epochs)) if epochs[i] < epochs[i - 1]]
    return [
        Check("no order lost or held by two factories at once", not found["holders"] and not found["overlaps"],
              "; ".join(found["holders"] + found["overlaps"]) or "every held order has exactly one open assignment"),
        Check("no order held by a DOWN factory", not found["down"], "; ".join(found["down"]) or "none"),
        Check("every completed order completed once", not found["completed"],
              "; ".join(found["completed"]) or f"{stats['completed']} completed, "
                                               f"{stats['duplicate_completions']} repeated completions counted, "
                                               "not applied"),
        Check("stale-epoch status reports rejected", not went_back,
              "; ".join(went_back) or f"{stats['stale_reports']} stale reports rejected"),
    ]
