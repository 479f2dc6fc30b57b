"""Durations on the command line: ``30s``, ``90m``, ``24h``, ``1d``, ``1h30m``, ``0.5s``, ``45``.

Kept apart from the commands so it can be tested (and reused by plugins) without typer.
"""

from __future__ import annotations

import re

import typer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; a plain number is seconds. Raises ValueError saying what is wrong."""
    value = text.strip().lower()
    if not value:
        raise ValueError("empty duration; write e.g. 30s, 90m, 24h, 1d or 1h30m")
    if _NUMBER.fullmatch(value):
        seconds = float(value)
    else:
        pos = 0
        seconds = 0.0
        seen: list[str] = []
        for match in _PART.finditer(value):
            if match.start() != pos:
                break
            unit = match.group(2)
            if unit in seen:
                raise ValueError(f"duration {text!r} gives the unit {unit!r} twice")
            seen.append(unit)
            seconds += float(match.group(1)) * _UNITS[unit]
            pos = match.end()
        if pos != len(value) or not seen:
            raise ValueError(
                f"not a duration: {text!r}; write a number with a unit (ms, s, m, h, d) such as "
                "30s, 90m, 24h, 1d, 1h30m or 0.5s, or a plain number of seconds"
            )
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return seconds


def duration_option(text: str | float | None) -> float | None:
    """Typer ``parser=`` for duration options: a bad value is a usage error (exit code 2)."""
    if text is None or isinstance(text, float):
        return text
    try:
        return parse_duration(str(text))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def format_duration(seconds: float) -> str:
    """``5400`` → ``1h30m``; sub-second and odd values keep their decimals (``0.5s``)."""
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{seconds:.1f}s".replace(".0s", "s")
    parts = []
    rest = round(seconds, 3)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{int(count)}{unit}")
    if rest:
        parts.append(f"{rest:g}s" if rest != int(rest) else f"{int(rest)}s")
    return "".join(parts)
