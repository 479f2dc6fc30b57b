"""The reaction to a storage alert, decided without side effects: the category (fresh/dry stock,
blade A/B stock) furthest from its target decides; fresh/dry → change the fresh amount by ±2 (±4
when far off), A/B → swap one machine, if that keeps the blades balanced. The component applies the
decision (cooldown, state, the fenced command)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from forge_sched.blades.table import Machine, MachineTable, other


@dataclass(frozen=True)
class Reaction:
    """What to do about an alert: ``kind`` "fresh" (set ``fresh_amount``, send ``change``) or
    "blade" (swap ``machine`` to ``blade``); ``kind`` is also the cooldown to start."""

    kind: Literal["fresh", "blade"]
    change: int = 0
    fresh_amount: int = 0
    machine: Machine | None = None
    blade: str = ""


def clamp(amount: int, fresh_max: int) -> int:
    """The fresh amount kept within 0..``fresh_max``."""
    return max(0, min(fresh_max, amount))


def furthest_category(levels_payload: Mapping[str, Any], targets: Mapping[str, float]) -> tuple[str, float]:
    """The category ("fresh", "dry", "A", "B") furthest from its target, and how far (level - target).

    ``levels_payload`` is a ``sched.storage_alert`` body (aFresh, aDry, bFresh, bDry in %)."""
    p = levels_payload
    levels = {"fresh": (p["aFresh"] + p["bFresh"]) / 2, "dry": (p["aDry"] + p["bDry"]) / 2,
              "A": (p["aFresh"] + p["aDry"]) / 2, "B": (p["bFresh"] + p["bDry"]) / 2}
    category = max(levels, key=lambda c: abs(levels[c] - targets[c]))
    return category, levels[category] - targets[category]


def fresh_change(category: str, off: float, threshold: float) -> int:
    """The change of the fresh amount for a fresh/dry ``category`` ``off`` its target: ±2, or ±4
    when more than twice the threshold off; positive means more fresh."""
    more_fresh = (off < 0) == (category == "fresh")
    step = 4 if abs(off) > 2 * threshold else 2
    return step if more_fresh else -step


def swap_keeps_balance(counts: Mapping[str, int], needed: str) -> bool:
    """Whether swapping one machine to ``needed`` leaves the A/B counts within one of each other."""
    return counts[needed] + 1 - (counts[other(needed)] - 1) <= 1


def react(levels_payload: Mapping[str, Any], table: MachineTable, *, targets: Mapping[str, float], threshold: float,
          fresh_amount: int, fresh_max: int, cooldown_until: Mapping[str, float], now: float) -> Reaction | None:
    """The reaction to a storage alert, or None to ignore it (within the threshold, in a cooldown,
    the fresh amount already at its limit, a swap that would unbalance, no machine to swap)."""
    category, off = furthest_category(levels_payload, targets)
    if abs(off) <= threshold:
        return None
    kind: Literal["fresh", "blade"] = "fresh" if category in ("fresh", "dry") else "blade"
    if now < cooldown_until.get(kind, float("-inf")):
        return None
    if kind == "fresh":
        change = fresh_change(category, off, threshold)
        amount = clamp(fresh_amount + change, fresh_max)
        return None if amount == fresh_amount else Reaction("fresh", change=change, fresh_amount=amount)
    needed = category if off < 0 else other(category)
    if not swap_keeps_balance(table.counts, needed):
        return None
    m = table.swap_candidate(other(needed))
    return None if m is None else Reaction("blade", machine=m, blade=needed)
