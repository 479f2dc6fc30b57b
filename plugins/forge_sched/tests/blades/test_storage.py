"""The storage-alert reaction: the furthest category decides; cooldowns, limits and balance veto."""

from __future__ import annotations

from typing import Any

from forge_sched.blades.storage import Reaction, fresh_change, furthest_category, react
from forge_sched.blades.table import Machine, MachineTable

TARGETS = {"fresh": 50.0, "dry": 50.0, "A": 50.0, "B": 50.0}


def levels(a_fresh: float, a_dry: float, b_fresh: float, b_dry: float) -> dict[str, float]:
    return {"aFresh": a_fresh, "aDry": a_dry, "bFresh": b_fresh, "bDry": b_dry}


def table_with(*blades: str) -> MachineTable:
    t = MachineTable()
    for mid, blade in enumerate(blades):
        t.set_blade(t.machines.setdefault(mid, Machine(mid, float(mid))), blade, confirmed=True)
    return t


def run(payload: dict[str, float], table: MachineTable | None = None, **kw: Any) -> Reaction | None:
    options: dict[str, Any] = {"targets": TARGETS, "threshold": 5.0, "fresh_amount": 4, "fresh_max": 10,
                               "cooldown_until": {}, "now": 100.0, **kw}
    return react(payload, table or table_with("A", "B"), **options)


def test_furthest_category_and_fresh_steps() -> None:
    assert furthest_category(levels(30, 50, 30, 50), TARGETS) == ("fresh", -20.0)
    assert fresh_change("fresh", -10.0, 5.0) == 2 and fresh_change("fresh", -11.0, 5.0) == 4
    assert fresh_change("dry", -8.0, 5.0) == -2


def test_low_fresh_stock_raises_the_fresh_amount() -> None:
    assert run(levels(42, 50, 42, 50)) == Reaction("fresh", change=2, fresh_amount=6)
    assert run(levels(30, 50, 30, 50)) == Reaction("fresh", change=4, fresh_amount=8)


def test_ignored_within_threshold_in_cooldown_or_at_the_limit() -> None:
    assert run(levels(48, 52, 50, 50)) is None
    assert run(levels(30, 50, 30, 50), cooldown_until={"fresh": 101.0}) is None
    assert run(levels(30, 50, 30, 50), fresh_amount=10) is None


def test_low_a_stock_swaps_the_freshest_b_machine_to_a_if_balance_allows() -> None:
    t = table_with("A", "B", "B")
    reaction = run(levels(30, 30, 50, 50), t)
    assert reaction is not None and reaction.kind == "blade"
    assert reaction.machine is t.machines[2] and reaction.blade == "A"
    assert run(levels(30, 30, 50, 50), table_with("A", "B")) is None   # 2 A / 0 B would unbalance
