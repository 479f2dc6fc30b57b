"""Failover policy: when a source goes DOWN, decide who takes over its work.

The contract is deliberately small so schedulers can bring their own (capacity-aware,
affinity-aware) policies; :class:`RoundRobinFailover` is the reference: it spreads failovers
over the healthy targets in turn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["FailoverContext", "FailoverDecision", "FailoverPolicy", "RoundRobinFailover"]


@dataclass(frozen=True)
class FailoverContext:
    """What the caller knows when ``source`` changes: its work items and when it happened."""

    work: list[Any] = field(default_factory=list)
    at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FailoverDecision:
    """Where ``reassigned`` work goes; ``target`` is None when nobody healthy is left."""

    target: str | None
    reassigned: list[Any]
    note: str


@runtime_checkable
class FailoverPolicy(Protocol):
    async def on_down(self, source: str, ctx: FailoverContext) -> FailoverDecision:
        """``source`` went DOWN: choose who takes its work."""

    async def on_up(self, source: str, ctx: FailoverContext) -> None:
        """``source`` is back: it may receive work again."""


class RoundRobinFailover:
    """Hands a failed source's work to the next healthy target in a fixed rotation."""

    def __init__(self, targets: Iterable[str]) -> None:
        self._order: list[str] = list(dict.fromkeys(targets))
        self.healthy: set[str] = set(self._order)
        self._next = 0

    async def on_down(self, source: str, ctx: FailoverContext) -> FailoverDecision:
        self.healthy.discard(source)
        candidates = [t for t in self._order if t in self.healthy and t != source]
        if not candidates:
            return FailoverDecision(
                None, [], f"{source} is DOWN and no healthy target is left among {self._order}; work kept"
            )
        n = len(self._order)
        for step in range(n):
            target = self._order[(self._next + step) % n]
            if target in candidates:
                self._next = (self._order.index(target) + 1) % n
                break
        work = list(ctx.work)
        return FailoverDecision(target, work, f"{source} is DOWN: {len(work)} item(s) moved to {target}")

    async def on_up(self, source: str, ctx: FailoverContext) -> None:
        if source not in self._order:
            self._order.append(source)
        self.healthy.add(source)
