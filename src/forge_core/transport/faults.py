"""Fault injection for the in-memory transport: drop, delay, duplicate, reorder, partition.

Faults are rules matched against the topic (MQTT-style pattern). Randomness comes from a seeded
RNG so a faulty run under the virtual clock repeats exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from forge_core.transport.topics import matches, validate_pattern


@dataclass
class FaultRule:
    kind: str  # drop | delay | duplicate | reorder
    pattern: str = "#"
    probability: float = 1.0
    remaining: int | None = None  # None: until removed
    seconds: float = 0.0  # delay
    window: int = 0  # reorder: how many messages are held and shuffled
    held: list = field(default_factory=list)


class Faults:
    """The fault plan of one in-memory hub. Methods return the rule so a test can remove it."""

    def __init__(self, seed: int | None = 0) -> None:
        self.rng = random.Random(seed)
        self.rules: list[FaultRule] = []
        self.partitioned: set[str] = set()
        self.stats = {"dropped": 0, "delayed": 0, "duplicated": 0, "reordered": 0, "partitioned": 0}
        #: Called after every change of the plan (the hub drops its cached routes, which say whether a
        #: topic's messages take the slow path). Change the plan through these methods only.
        self.on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    @property
    def active(self) -> bool:
        return bool(self.rules or self.partitioned)

    def _add(self, rule: FaultRule) -> FaultRule:
        validate_pattern(rule.pattern)
        if not 0.0 <= rule.probability <= 1.0:
            raise ValueError(f"fault probability must be within 0..1, got {rule.probability}")
        self.rules.append(rule)
        self._changed()
        return rule

    def drop(self, pattern: str = "#", *, probability: float = 1.0, count: int | None = None) -> FaultRule:
        """Lose matching messages (all, a share, or the next ``count``)."""
        return self._add(FaultRule("drop", pattern, probability, count))

    def delay(self, pattern: str = "#", seconds: float = 1.0, *, probability: float = 1.0) -> FaultRule:
        """Deliver matching messages ``seconds`` late (on the transport's clock)."""
        return self._add(FaultRule("delay", pattern, probability, None, seconds=seconds))

    def duplicate(self, pattern: str = "#", *, probability: float = 1.0, count: int | None = None) -> FaultRule:
        """Deliver matching messages twice."""
        return self._add(FaultRule("duplicate", pattern, probability, count))

    def reorder(self, pattern: str = "#", *, window: int = 2) -> FaultRule:
        """Hold ``window`` matching messages and release them in shuffled order."""
        if window < 2:
            raise ValueError("reorder window must be at least 2")
        return self._add(FaultRule("reorder", pattern, 1.0, None, window=window))

    def partition(self, *owners: str) -> None:
        """Cut the named components off: nothing they publish or subscribe to gets through."""
        self.partitioned.update(owners)
        self._changed()

    def remove(self, rule: FaultRule) -> None:
        self.rules.remove(rule)
        self._changed()

    def heal(self) -> None:
        """Remove every rule and partition (held reordered messages are dropped with them)."""
        self.rules.clear()
        self.partitioned.clear()
        self._changed()

    def pick(self, kind: str, topic: str) -> FaultRule | None:
        """The first rule of ``kind`` that fires for ``topic`` now (consumes a count)."""
        for rule in self.rules:
            if rule.kind != kind or not matches(rule.pattern, topic):
                continue
            if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                continue
            if rule.remaining is not None:
                if rule.remaining <= 0:
                    continue
                rule.remaining -= 1
            return rule
        return None
