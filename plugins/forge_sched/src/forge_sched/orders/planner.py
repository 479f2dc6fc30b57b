"""Where orders go, decided without side effects (the service applies the decisions in a transaction).

Free capacity is ``capacity - load``, load the orders a factory holds (assigned or in progress).
Only UP factories take orders; the one with the most free capacity wins, ties to the smallest id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["FactoryLoad", "pick", "rebalance_moves"]


@dataclass
class FactoryLoad:
    """A factory as the planner sees it: ``load`` is updated as it plans."""

    id: str
    capacity: int
    status: str
    load: int

    @property
    def free(self) -> int:
        return self.capacity - self.load


def pick(factories: Iterable[FactoryLoad], *, exclude: str | None = None) -> FactoryLoad | None:
    """The UP factory (other than ``exclude``) with the most free capacity, ties by id; None if all are full."""
    best: FactoryLoad | None = None
    for f in factories:
        if f.status != "UP" or f.id == exclude or f.free <= 0:
            continue
        if best is None or f.free > best.free or (f.free == best.free and f.id < best.id):
            best = f
    return best


def rebalance_moves(factories: Sequence[FactoryLoad],
                    movable: Mapping[str, Sequence[str]]) -> list[tuple[str, str, str]]:
    """Moves ``(order_id, from, to)`` of not-yet-started orders (``movable`` per UP factory) that even
    out free capacity: one order moves from the UP factory with the least free capacity to the one
    with the most, while that gap is at least 2 (one move narrows it by 2, so a smaller gap would
    only swap the roles). ``factories`` loads are updated as the moves are planned."""
    left = {fid: list(ids) for fid, ids in movable.items()}
    up = [f for f in factories if f.status == "UP"]
    moves: list[tuple[str, str, str]] = []
    while True:
        sources = [f for f in up if left.get(f.id)]
        if not sources:
            return moves
        source = min(sources, key=lambda f: (f.free, f.id))
        target = pick(up, exclude=source.id)
        if target is None or target.free - source.free < 2:
            return moves
        order_id = left[source.id].pop(0)
        source.load -= 1
        target.load += 1
        moves.append((order_id, source.id, target.id))
