"""The envelope every message travels in.

Attribute names follow CloudEvents 1.0: ``id``, ``source``, ``type``, ``time``; ``key`` is the
partitioning extension's ``partitionkey``; ``schema_version`` rides as the extension
``schemaversion``; ``headers`` hold further extensions, W3C ``traceparent``/``tracestate``
among them. ``payload`` is the JSON body (``data``), kept as decoded Python values in process.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec


@dataclass(slots=True)
class Envelope:
    """A message: CloudEvents attributes around a JSON payload.

    Treat a delivered envelope as read-only: one object is shared by every subscriber that
    matches it on the in-memory transport.
    """

    type: str
    payload: Any
    source: str = ""
    id: str = ""
    time: float = 0.0
    key: str | None = None
    schema_version: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    topic: str = ""

    @property
    def time_iso(self) -> str:
        """``time`` as RFC 3339 UTC, as CloudEvents writes it."""
        return format_time(self.time)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (structured mode), for logs, dead letters and traces."""
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time_iso,
            "partitionkey": self.key,
            "schemaversion": self.schema_version,
            "topic": self.topic,
            "headers": dict(self.headers),
            "data": self.payload,
        }


class SharedHeaders(dict[str, str]):
    """The headers of every envelope ``MessageBus.publish`` makes without any: one shared empty dict
    (a dict per message cost ~270 instructions of the bus's ~14,000) that refuses to be written to,
    so no envelope can change another's. To add headers, give the envelope a new dict (as
    ``dataclasses.replace(envelope, headers={...})`` or ``publish(headers=...)`` do)."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("this envelope's headers are the shared empty ones (read-only): set "
                        "envelope.headers to a new dict instead of writing into it")

    __setitem__ = __delitem__ = __ior__ = _refuse
    update = setdefault = pop = popitem = clear = _refuse


#: The shared read-only empty headers (:class:`SharedHeaders`).
NO_HEADERS = SharedHeaders()


class RawMessage(msgspec.Struct, gc=False):
    """Bytes as a network transport received them, before decoding.

    A msgspec ``Struct`` the garbage collector does not track (``gc=False``): a consumed batch keeps
    one per record alive until its handlers ran, and as tracked objects (a slots dataclass) each
    counted toward the next young-generation pass and was walked by it (docs/performance.md, Kafka).
    Nothing it holds refers back to it (the body is bytes, the headers a dict of text, the verdict an
    Envelope decoded from it), so it can be in no reference cycle: do not put one there."""

    body: bytes
    #: Read-only: a transport may share one dict between records with the same headers.
    headers: dict[str, str] = {}
    #: Set by the first bus subscriber that decodes it: the envelope, or False if it was
    #: dead-lettered; later subscribers of the same delivery reuse the verdict, so one bad
    #: message makes one dead letter however many handlers match it.
    verdict: Envelope | bool | None = None


def datetime_time_text(epoch: float) -> str:
    """``epoch`` as RFC 3339 UTC with six fraction digits, by ``datetime`` (what :func:`format_time`
    returns for every input; its reference in the tests)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


#: "000" ... "999": a time's six microsecond digits are two lookups, ``DIGITS3[us // 1000] +
#: DIGITS3[us % 1000]`` (~500 instructions less than ``str(us + 1_000_000)[1:]``, less than ``:06d``; same text)
DIGITS3: tuple[str, ...] = tuple(f"{n:03d}" for n in range(1000))

#: (whole second, "YYYY-MM-DDTHH:MM:SS.") of the second format_time wrote last, swapped whole; only a
#: second from 1970 to 9999 (there ``epoch // 1.0`` is the whole part datetime takes, the difference exact)
_second_text: tuple[float, str] = (math.nan, "")

#: (day since 1970, "YYYY-MM-DDT") of the day of the second kept last
_day_text: tuple[int, str] = (-1, "")

#: The last second whose times format_time keeps (9999-12-31T23:59:59Z; later ones are datetime's errors).
_LAST_KEPT = 253_402_300_799.0


def format_time(epoch: float) -> str:
    """``epoch`` (seconds since 1970, UTC) as RFC 3339 with six fraction digits: ``2026-12-05T09:12:03.250000Z``.

    The date and clock part is built once per second and kept (a clock's times come in order, many
    to a second): a time of the same second costs a floor, a round and two lookups, not ``datetime``'s
    ~20,000 instructions. The text is :func:`datetime_time_text`'s for every input, rounding included
    (the microseconds half to even, a carry into the next second); times before 1970 or after 9999,
    NaN and the infinities go to ``datetime`` each time (its errors too)."""
    second, head = _second_text
    whole = epoch // 1.0
    if whole == second:
        micros = round((epoch - whole) * 1e6)  # exact difference; half to even, as datetime rounds
        if micros < 1_000_000:
            return f"{head}{DIGITS3[micros // 1000]}{DIGITS3[micros % 1000]}Z"  # one string built
    return _format_new_second(epoch)


def _format_new_second(epoch: float) -> str:
    """``format_time`` of a time outside the kept second: its second's text from the day's (kept)
    and the clock's digits, the microseconds appended; outside 1970-9999, ``datetime``'s text or error."""
    global _second_text, _day_text
    if not 0.0 <= epoch < _LAST_KEPT:  # (NaN fails the test too)
        return datetime_time_text(epoch)
    whole = epoch // 1.0
    micros = round((epoch - whole) * 1e6)
    if micros >= 1_000_000:  # rounded up into the next second
        micros -= 1_000_000
        whole += 1.0
    day, in_day = divmod(int(whole), 86_400)  # POSIX time: every day 86,400 s
    kept_day, date = _day_text  # one read: another thread may swap it (both caches are swapped whole)
    if day != kept_day:
        date = datetime_time_text(day * 86_400.0)[:11]  # "YYYY-MM-DDT"
        _day_text = (day, date)
    hour, in_hour = divmod(in_day, 3600)
    minute, sec = divmod(in_hour, 60)
    head = f"{date}{DIGITS3[hour][1:]}:{DIGITS3[minute][1:]}:{DIGITS3[sec][1:]}."
    _second_text = (whole, head)
    return f"{head}{DIGITS3[micros // 1000]}{DIGITS3[micros % 1000]}Z"


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class IdGenerator:
    """Cheap unique ids: a per-process random prefix and a counter.

    uuid4 costs an ``os.urandom`` call per message; a prefix plus counter is unique per
    (source, id) as CloudEvents requires and ten times cheaper. Under a virtual clock the
    prefix comes from the run's seed, so traces repeat exactly.
    """

    __slots__ = ("counter", "next", "prefix")

    def __init__(self, seed: int | None = None) -> None:
        bits = random.Random(seed).getrandbits(48) if seed is not None else int.from_bytes(os.urandom(6))
        #: An id is ``prefix + str(next(counter))``: the bus builds it inline on its hot path
        #: (fastest there), everyone else calls the generator.
        self.prefix = f"{bits:012x}-"
        self.counter = itertools.count(1)
        #: The next id, without a Python frame: prefix + 1, 2, 3, ... built in C. ``repr`` and
        #: ``operator.concat`` are plain builtins: ``str`` (a type) and a bound ``__add__``/``__next__``
        #: (method wrappers) took ~25 % longer per id through ``map``.
        self.next: Callable[[], str] = functools.partial(
            next, map(operator.concat, itertools.repeat(self.prefix), map(repr, self.counter)))

    def __call__(self) -> str:
        return self.next()

    def many(self, count: int) -> list[str]:
        """The next ``count`` ids at once (what ``count`` calls would return)."""
        take = self.next
        return [take() for _ in range(count)]
