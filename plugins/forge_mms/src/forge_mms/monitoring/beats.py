"""Factory heartbeats: reading one from a message, and the recent beats of every factory.

A beat *failed* when it carries new errors (``metrics.errors`` rose since the previous beat for a
cumulative counter, or is above 0 for a count per beat) or when it was late (a timeout: its gap to
the previous beat is over ``late_after`` seconds). :meth:`BeatHistory.calculate_error_rate` is the
share of failed beats among those that arrived in a window; the fault detector and the risk
predictor both read it.

The monitor asks for the same window of every factory on every check (the risk predictor's 5
minutes, ~300 beats, once a second per replica); :meth:`BeatHistory.window` keeps that window as a
:class:`BeatWindow` updated as beats arrive and expire, with its failed-beat count and the sums of a
least-squares fit kept up to date, so a check costs O(beats that arrived or expired), not O(window).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, Literal, NamedTuple, overload

from forge_core import Envelope
from forge_core.transport import topic_level

__all__ = ["FACTORY_HEARTBEAT", "Beat", "BeatHistory", "BeatRefused", "BeatWindow", "factory_of"]

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


class Beat(NamedTuple):
    """One beat as the monitor saw it. ``at`` is the arrival time on the monitor's clock.

    Immutable; a named tuple, not a frozen dataclass: every replica builds one per beat (four a
    second per replica in industry40), and a frozen dataclass's ``__init__`` sets each of its ten
    fields through ``object.__setattr__`` (~3x the cost of a tuple's)."""

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
        self._tracks: dict[str, _Track] = {}
        # (factory, length) -> its window: the monitor asks for one every check per factory and replica
        self._window_of: dict[tuple[str, float], BeatWindow] = {}

    def add(self, factory: str, at: float, payload: dict[str, Any]) -> Beat:
        """Record the beat ``payload`` (valid ``mms.factory_heartbeat``) that arrived at ``at``."""
        metrics = payload.get("metrics") or {}
        errors = metrics.get("errors", 0.0)
        if type(errors) is not float:  # a JSON float as is (what float() gives), else converted
            errors = float(errors)
        track = self._tracks.get(factory)
        if track is None:
            track = self._tracks[factory] = _Track()
        previous = track.last
        if previous is None:
            gap, late = None, False
            new = 0.0 if self.cumulative else errors  # a counter's first reading says nothing about the last interval
        else:
            gap = at - previous.at
            late = gap > self.late_after
            if not self.cumulative or errors < previous.errors:
                new = errors  # per beat, or the counter went down: reset by a restart, all of it is new
            else:
                new = errors - previous.errors
        latency, timestamp = payload.get("latencyMs"), payload["timestamp"]
        cpu, memory = metrics.get("cpu"), metrics.get("memory")
        # a JSON float as is (what float() and _number give for one): a call less per number
        beat = track.last = _new_beat((
            factory, at, timestamp if type(timestamp) is float else float(timestamp), errors, new, gap, late,
            cpu if type(cpu) is float else _number(cpu),
            memory if type(memory) is float else _number(memory),
            latency if type(latency) is float or latency is None else float(latency)))
        beats = track.beats
        beats.append(beat)
        oldest = at - self.horizon
        while beats[0].at < oldest:  # the beat just added is never older than the horizon
            beats.popleft()
        for window in track.windows:
            window.append(beat)
        return beat

    def factories(self) -> list[str]:
        return [factory for factory, track in self._tracks.items() if track.last is not None]

    def last(self, factory: str) -> Beat | None:
        track = self._tracks.get(factory)
        return track.last if track is not None else None

    def beats(self, factory: str, window: float, now: float) -> list[Beat]:
        """The beats of ``factory`` that arrived in ``[now - window, now]``, oldest first."""
        start = now - window
        track = self._tracks.get(factory)
        return [b for b in track.beats if start <= b.at <= now] if track is not None else []

    def window(self, factory: str, window: float, now: float) -> BeatWindow:
        """The beats of ``factory`` in ``[now - window, now]`` as a :class:`BeatWindow` kept between
        calls (the same beats as :meth:`beats`; ``window`` must not exceed the horizon)."""
        found = self._window_of.get((factory, window))
        if found is None:
            if window > self.horizon:
                raise ValueError(f"BeatHistory: window {window!r} s is longer than the horizon {self.horizon!r} s")
            track = self._tracks.get(factory)
            if track is None:
                track = self._tracks[factory] = _Track()
            found = self._window_of[factory, window] = BeatWindow(window, track.beats)
            track.windows.append(found)
        found.advance(now)
        return found

    def calculate_error_rate(self, factory: str, window: float, now: float) -> float:
        """Failed beats (new errors or timeouts) / beats of ``factory`` in the last ``window`` s (0 without beats)."""
        return error_rate(self.beats(factory, window, now))


#: Beat(*values) without the named tuple's ``__new__``, a Python function (a frame per beat per replica)
_new_beat: Callable[[tuple[Any, ...]], Beat] = partial(tuple.__new__, Beat)


class _Track:
    """One factory's beats: the newest, those of the horizon, and the windows kept up to date."""

    __slots__ = ("beats", "last", "windows")

    def __init__(self) -> None:
        self.last: Beat | None = None
        self.beats: deque[Beat] = deque()
        self.windows: list[BeatWindow] = []


def error_rate(beats: Iterable[Beat]) -> float:
    total = failed = 0
    for beat in beats:
        total += 1
        failed += beat.failed
    return failed / total if total else 0.0


class _Fit:
    """Running sums of a least-squares fit of ``signal(beat)`` over arrival time, for a sliding window.

    x is taken from ``origin`` (the oldest beat when the sums were last rebuilt), so the sums stay
    small; they are rebuilt from the beats once as many have left as the window holds, which bounds
    the rounding that adding and subtracting accumulates. :class:`BeatWindow` adds a beat to the sums
    as it enters (``append``) and takes it out as it leaves (``advance``), inline: a beat in and a beat
    out per window and replica."""

    __slots__ = ("n", "origin", "removed", "signal", "sx", "sxx", "sxy", "sy")
    origin: float | None

    def __init__(self, signal: Callable[[Beat], float | None], beats: Iterable[Beat]) -> None:
        self.signal = signal
        self.rebuild(beats)

    def rebuild(self, beats: Iterable[Beat]) -> None:
        # the sums of the beats in locals (a window's worth of beats every window's worth that left: as
        # many rebuilt as added in a full window); BeatWindow.append adds one beat the same way
        signal = self.signal
        origin: float | None = None
        n, sx, sy, sxx, sxy = 0, 0.0, 0.0, 0.0, 0.0
        for beat in beats:
            y = signal(beat)
            if y is None:
                continue
            if origin is None:
                origin = beat.at
            x = beat.at - origin
            n += 1
            sx += x
            sy += y
            sxx += x * x
            sxy += x * y
        self.n, self.sx, self.sy, self.sxx, self.sxy, self.removed, self.origin = n, sx, sy, sxx, sxy, 0, origin


class BeatWindow(Sequence[Beat]):
    """The beats of one factory in the last ``length`` seconds, oldest first, kept up to date by
    :class:`BeatHistory` (a read-only sequence: valid until the next beat or check; ``list()`` it to
    keep it). Besides the beats it keeps their failed count and the sums of least-squares fits
    (:meth:`fit`), so :attr:`error_rate` and a latency slope cost O(1) per check."""

    def __init__(self, length: float, beats: Iterable[Beat]) -> None:
        self.length = length
        self._beats: deque[Beat] = deque(beats)
        self.failed = sum(1 for b in self._beats if b.failed)
        self._fits: dict[Callable[[Beat], float | None], _Fit] = {}
        #: Changes with every beat in or out: the same version means the same beats, counts and sums.
        self.version = 0

    def append(self, beat: Beat) -> None:
        self._beats.append(beat)
        if beat.new_errors > 0 or beat.late:  # Beat.failed, without the property's call
            self.failed += 1
        self.version += 1
        for fit in self._fits.values():  # the fit's sums as _Fit.rebuild adds a beat (no call per beat and fit)
            y = fit.signal(beat)
            if y is None:
                continue
            at = beat.at
            origin = fit.origin
            if origin is None:
                origin = fit.origin = at
            x = at - origin
            fit.n += 1
            fit.sx += x
            fit.sy += y
            fit.sxx += x * x
            fit.sxy += x * y

    def advance(self, now: float) -> None:
        """Drop the beats that arrived before ``now - length``."""
        beats, start = self._beats, now - self.length
        while beats and beats[0].at < start:
            beat = beats.popleft()
            if beat.new_errors > 0 or beat.late:  # Beat.failed, without the property's call
                self.failed -= 1
            self.version += 1
            for fit in self._fits.values():  # the beat out of the fit's sums (no call per beat and fit)
                y = fit.signal(beat)
                origin = fit.origin
                if y is not None and origin is not None:
                    x = beat.at - origin
                    fit.n -= 1
                    fit.sx -= x
                    fit.sy -= y
                    fit.sxx -= x * x
                    fit.sxy -= x * y
                    fit.removed += 1
                if fit.removed >= 64 and fit.removed >= len(beats):  # max(len(beats), 64) without the call
                    fit.rebuild(beats)

    def expires_by(self, now: float) -> bool:
        """Whether :meth:`advance` to ``now`` would drop a beat (the oldest arrived before ``now - length``)."""
        beats = self._beats
        return bool(beats) and beats[0].at < now - self.length

    def oldest_at(self) -> float:
        """When the oldest beat in the window arrived (``math.inf`` without beats)."""
        beats = self._beats
        return beats[0].at if beats else math.inf

    @property
    def error_rate(self) -> float:
        """Failed beats / beats (0 without beats): what :func:`error_rate` gives for these beats."""
        return self.failed / len(self._beats) if self._beats else 0.0

    def fit(self, signal: Callable[[Beat], float | None]) -> tuple[int, float | None]:
        """(points, least-squares slope) of ``signal(beat)`` against arrival time over the beats for
        which it is not None; ``signal`` must be a pure function of the beat (it is called again
        when a beat leaves). The first call for a signal reads the window; later ones are O(1)."""
        fit = self._fits.get(signal)
        if fit is None:
            fit = self._fits[signal] = _Fit(signal, self._beats)
        # the OLS slope from the sums, here (not a method of _Fit: a call less per factory per check)
        n = fit.n
        if n < 2:
            return n, None  # fewer than 2 points
        sx, sum_xx = fit.sx, fit.sxx
        sxx = sum_xx - sx * sx / n
        if sxx <= 1e-9 * max(sum_xx, 1.0):  # equal xs, up to the sums' rounding
            return n, None
        return n, (fit.sxy - sx * fit.sy / n) / sxx

    def __len__(self) -> int:
        return len(self._beats)

    @overload
    def __getitem__(self, index: int) -> Beat: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Beat]: ...
    def __getitem__(self, index: int | slice) -> Beat | Sequence[Beat]:
        if isinstance(index, slice):
            return list(self._beats)[index]
        return self._beats[index]

    def __iter__(self) -> Iterator[Beat]:
        return iter(self._beats)

    def __reversed__(self) -> Iterator[Beat]:
        return reversed(self._beats)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
