"""RFC 3339 time stamps on the hot path: ``format_time`` and ``parse_time`` with the date and clock
part cached per second (the same text and value; checked against them in the tests)."""

from __future__ import annotations

import math

from forge_core.messages.envelope import DIGITS3, format_time, parse_time

__all__ = ["DIGITS3", "fast_format_time", "fast_parse_time"]

# -- time stamps on the hot path -----------------------------------------------------------------
# Every message carries its time as RFC 3339 text, and datetime takes ~5 µs to write it. Only the
# sub-second part changes between most messages, so the date and clock part is formatted once per
# second. The result is exactly ``format_time``'s (same rounding; checked against it in the tests).

#: (whole second, "YYYY-MM-DDTHH:MM:SS.") of the last second formatted, swapped whole; only a second
#: >= 0 (for those, the floor below is math.modf's whole part, and its fraction the same float).
_format_cache: tuple[float, str] = (math.nan, "")
_last_formatted: tuple[float, str] = (math.nan, "")  # a batch shares one time stamp


def fast_format_time(epoch: float) -> str:
    """``format_time(epoch)``, the date and clock part cached per second: a time in the cached
    second costs a floor, a round and a concatenation (a per-message cost of every publish; the
    ``:06d`` format and math.modf cost a third more)."""
    global _last_formatted
    last = _last_formatted
    if last[0] == epoch:
        return last[1]
    second, head = _format_cache
    whole = epoch // 1.0
    if whole == second:
        micros = round((epoch - whole) * 1e6)  # half to even, as datetime.fromtimestamp rounds
        if micros < 1_000_000:
            text = f"{head}{DIGITS3[micros // 1000]}{DIGITS3[micros % 1000]}Z"  # six digits; one string built
            _last_formatted = (epoch, text)
            return text
    return _format_new_second(epoch)


def _format_new_second(epoch: float) -> str:
    """``fast_format_time`` outside the cached second (caching the new one when it is >= 0)."""
    global _format_cache, _last_formatted
    frac, whole = math.modf(epoch)
    micros = round(frac * 1e6)  # half to even, as datetime.fromtimestamp rounds
    if micros >= 1_000_000:
        micros -= 1_000_000
        whole += 1.0
    elif micros < 0:
        micros += 1_000_000
        whole -= 1.0
    text = format_time(whole)
    if len(text) != 27:  # no fast path for other widths
        return format_time(epoch)
    head = text[:20]
    if whole >= 0:
        _format_cache = (whole, head)
    text = f"{head}{micros:06d}Z"
    _last_formatted = (epoch, text)
    return text


#: ("YYYY-MM-DDTHH:MM:SS.", its epoch second in µs) of the last second parsed, swapped whole; the
#: head never matches before a first parse (no text starts with a NUL).
_parse_cache: tuple[str, int] = ("\0", 0)


def fast_parse_time(text: str) -> float:
    """``parse_time(text)``; for the shape Forge writes (``...SS.ffffffZ``) the date and clock part
    is parsed once per second: a message of the same second costs a prefix test and the
    microseconds' int (a third less than checking the shape field by field, per consumed message).
    Same value as ``datetime.timestamp`` (checked in the tests)."""
    head, micros = _parse_cache
    if text.startswith(head) and len(text) == 27 and text[26] == "Z":
        fraction = text[20:26]
        if fraction.isdigit() and fraction.isascii():  # (isdigit alone takes "٣" and "²")
            return (micros + int(fraction)) / 1_000_000  # as timedelta.total_seconds() rounds
    return _parse_new_second(text)


def _parse_new_second(text: str) -> float:
    """``fast_parse_time`` of a text not in the cached second: caches its second if it has the
    shape Forge writes, else ``parse_time`` (which raises ValueError for what is no time)."""
    global _parse_cache
    if (len(text) != 27 or text[19] != "." or text[26] != "Z" or not text[20:26].isdigit()
            or not text.isascii()):
        return parse_time(text)
    whole = parse_time(text[:19] + "Z")
    if whole != int(whole):
        return parse_time(text)
    micros = int(whole) * 1_000_000
    _parse_cache = (text[:20], micros)
    return (micros + int(text[20:26])) / 1_000_000
