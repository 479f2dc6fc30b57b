"""Shift windows: which ``[start, end)`` spans of a day belong to which shift (UTC times of day)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["DAY", "Shift", "ShiftWindow", "shift_windows"]

DAY = 86_400.0


@dataclass(frozen=True)
class Shift:
    """A shift starting ``start`` seconds after midnight UTC, ``hours`` long (may cross midnight)."""

    name: str
    start: float
    hours: float

    @classmethod
    def parse(cls, name: str, hhmm: str, hours: float) -> Shift:
        try:
            h, m = (int(part) for part in hhmm.split(":"))
        except ValueError:
            raise ValueError(f"shift {name!r}: start {hhmm!r} is not HH:MM") from None
        if not (0 <= h < 24 and 0 <= m < 60) or not 0 < hours <= 24:
            raise ValueError(f"shift {name!r}: start {hhmm!r} / hours {hours} out of range")
        return cls(name, h * 3600.0 + m * 60.0, float(hours))


@dataclass(frozen=True)
class ShiftWindow:
    shift: str
    day: int  # epoch day of the shift's start
    start: float
    end: float

    @property
    def key(self) -> str:
        return f"{self.day}:{self.shift}"


def shift_windows(shifts: Sequence[Shift], t0: float, t1: float) -> Iterator[ShiftWindow]:
    """Every shift occurrence overlapping ``[t0, t1)``, clipped to it, in time order."""
    found: list[ShiftWindow] = []
    for day in range(int(t0 // DAY) - 1, int(t1 // DAY) + 1):
        for shift in shifts:
            start = day * DAY + shift.start
            end = start + shift.hours * 3600.0
            lo, hi = max(start, t0), min(end, t1)
            if lo < hi:
                found.append(ShiftWindow(shift.name, day, lo, hi))
    yield from sorted(found, key=lambda w: (w.start, w.shift))
