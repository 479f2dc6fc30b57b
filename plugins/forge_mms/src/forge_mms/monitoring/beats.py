"""Factory heartbeats: reading one from a message, and the recent beats of every factory.

A beat *failed* when it carries new errors (``metrics.errors`` rose since the previous beat for a
cumulative counter, or is above 0 for a count per beat) or when it was late (a timeout: its gap to
the previous beat is over ``late_after`` seconds). :meth:`BeatHistory.calculate_error_rate` is the
share of failed beats among those that arrived in a window; the fault detector and the risk
predictor both read it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from forge_core import Envelope
from forge_core.transport import topic_level

__all__ = ["FACTORY_HEARTBEAT", "Beat", "BeatHistory", "BeatRefused", "factory_of"]

FACTORY_HEARTBEAT = "mms.factory_heartbeat"


class BeatRefused(ValueError):
    """A beat the monitor cannot attribute to a factory (dead-lettered as refused)."""


def factory_of(envelope: Envelope, level: int | None) -> str:
    """The factory a beat is from: ``factoryId``, else the message key, else topic level ``level``.

    Raises :class:`BeatRefused` naming what is wrong when none of them is a usable topic level
    (the id becomes the last level of ``forge/status/<id>``)."""
    payload = envelope.payload
    found = payload.get("factoryId") if isinstance(payload, dict) else None
    where = "factoryId"
    if not found and envelope.key:
        found, where = envelope.key, "the message key"
    if not found and level is not None:
        levels = (envelope.topic or "").split("/")
        found, where = (levels[level] if level < len(levels) else None), f"topic level {level} of {envelope.topic!r}"
    if not found:
        raise BeatRefused("no factory id: the beat has no factoryId, no key and no topic level "
                          f"{level} ({envelope.topic!r})")
    try:
        return topic_level(found)
    except ValueError as exc:
        raise BeatRefused(f"factory id from {where}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Beat:
    """One beat as the monitor saw it. ``at`` is the arrival time on the monitor's clock."""

    factory: str
    at: float
    timestamp: float
    errors: float
    new_errors: float
    gap: float | None
    late: bool
    cpu: float | None = None
    memory: float | None = None
    latency_ms: float | None = None

    @property
    def failed(self) -> bool:
        return self.new_errors > 0 or self.late


class BeatHistory:
    """The beats of the last ``horizon`` seconds, per factory, oldest first."""

    def __init__(self, horizon: float, *, late_after: float,
                 errors: Literal["cumulative", "per_beat"] = "cumulative") -> None:
        if horizon <= 0 or late_after <= 0:
            raise ValueError(f"BeatHistory: horizon and late_after must be > 0 s, got {horizon!r}, {late_after!r}")
        self.horizon = horizon
        self.late_after = late_after
        self.cumulative = errors == "cumulative"
        self._beats: dict[str, deque[Beat]] = {}
        self._last: dict[str, Beat] = {}

    def add(self, factory: str, at: float, payload: dict[str, Any]) -> Beat:
        """Record the beat ``payload`` (valid ``mms.factory_heartbeat``) that arrived at ``at``."""
        metrics = payload.get("metrics") or {}
        errors = float(metrics.get("errors", 0.0))
        previous = self._last.get(factory)
        if not self.cumulative:
            new = errors
        elif previous is None:
            new = 0.0  # a counter's first reading says nothing about the last interval
        elif errors >= previous.errors:
            new = errors - previous.errors
        else:
            new = errors  # the counter went down: reset by a restart, all of it is new
        gap = at - previous.at if previous is not None else None
        latency = payload.get("latencyMs")
        beat = Beat(factory, at, float(payload["timestamp"]), errors, new, gap,
                    gap is not None and gap > self.late_after, _number(metrics.get("cpu")),
                    _number(metrics.get("memory")), float(latency) if latency is not None else None)
        self._last[factory] = beat
        beats = self._beats.setdefault(factory, deque())
        beats.append(beat)
        while beats and beats[0].at < at - self.horizon:
            beats.popleft()
        return beat

    def factories(self) -> list[str]:
        return list(self._beats)

    def last(self, factory: str) -> Beat | None:
        return self._last.get(factory)

    def beats(self, factory: str, window: float, now: float) -> list[Beat]:
        """The beats of ``factory`` that arrived in ``[now - window, now]``, oldest first."""
        start = now - window
        return [b for b in self._beats.get(factory, ()) if start <= b.at <= now]

    def calculate_error_rate(self, factory: str, window: float, now: float) -> float:
        """Failed beats (new errors or timeouts) / beats of ``factory`` in the last ``window`` s (0 without beats)."""
        return error_rate(self.beats(factory, window, now))


def error_rate(beats: Iterable[Beat]) -> float:
    total = failed = 0
    for beat in beats:
        total += 1
        failed += beat.failed
    return failed / total if total else 0.0


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
