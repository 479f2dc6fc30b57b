"""A reading's ``timestamp`` text: ``forge_core.format_time``'s, its date-and-second part reused.

A sensor writes its clock's time on every reading (``2026-12-05T09:12:03.250000Z``); nine sensors at 1 s
write the same second's text nine times. :class:`TimeText` (one shared by the process's sensors, whose
samples come in time order) builds that part once per second and adds the microseconds, rounded as
``datetime.fromtimestamp`` rounds them (half to even, a carry into the next second), so the text is
``format_time``'s for every time (tests/test_timetext.py compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["TimeText"]


class TimeText:
    """``format_time(epoch)`` for epoch times at or after 1970 (what a clock reads), the second's text cached."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def __call__(self, epoch: float) -> str:
        if epoch < 0:  # before 1970: int() rounds toward zero, not down; format_time's own path
            return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        second = int(epoch)
        micro = round((epoch - second) * 1e6)  # exact difference; round() halves to even, as datetime does
        if micro >= 1_000_000:
            micro -= 1_000_000
            second += 1
        if second != self.second:
            self.second = second
            self.prefix = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")[:19] + "."
        return "%s%06dZ" % (self.prefix, micro)  # noqa: UP031 - %-format is the fastest here
