"""What the bus counts and records: routes between transports, per-type tallies and the trace
whose digest proves a simulated run deterministic."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from forge_core.messages.envelope import Envelope


@dataclass
class Route:
    """Forward messages from one transport to another (``routes:`` in the manifest)."""

    source: str
    target: str
    topics: list[str]
    types: list[str] | None = None


class Tally(Counter[str]):
    """A :class:`~collections.Counter` whose ``tally[key] += 1`` costs what a dict's does.

    Counter defines ``__delitem__`` in Python (a missing key is no error), which makes CPython
    route every item assignment through a Python-level slot: ~2.5x a dict's ``+= 1``, paid per
    message by the bus. Here ``del`` is dict's again (a missing key raises KeyError); everything
    else is Counter's.
    """

    __delitem__ = dict.__delitem__  # type: ignore[assignment]  # dict's own (the point)


#: What ``MessageBus.publish`` keeps per message type: ``[compiled check, schema version, published]``.
TypeSlot = list[Any]


@dataclass
class BusStats:
    #: Messages handled per type (exact when read by any other task than a handler in the middle of
    #: an in-memory delivery run: see MessageBus._make_direct_run).
    handled: Counter[str] = field(default_factory=Tally)
    forwarded: int = 0
    refused: int = 0
    #: Deliveries whose handler raised :class:`Redeliver`: handed back to the transport, not dead-lettered.
    redeliver: int = 0
    #: Sent by publish_batch and send; publish counts in its type's slot.
    _published: Counter[str] = field(default_factory=Tally, repr=False)
    _slots: dict[str, TypeSlot] = field(default_factory=dict, repr=False)

    @property
    def published(self) -> Counter[str]:
        """Messages sent per type: a new count, exact when read."""
        counts = Tally(self._published)
        for type_, slot in self._slots.items():
            if slot[2]:
                counts[type_] += slot[2]
        return counts


class TraceRecorder:
    """An ordered record of every message published, hashed as it goes.

    Two runs of the same manifest with the same seed under the virtual clock give the same
    digest; that is how determinism is proved. Each message's line (its fields, serialised when it
    is published) waits in a list and is hashed with the next :data:`_HASH_EVERY` - 1: one
    ``update`` of the joined lines hashes the same bytes as one per line (SHA-256 is a stream), for
    a C call per few hundred messages instead of two per message.
    """

    def __init__(self, keep: int = 0) -> None:
        self._hash = hashlib.sha256()
        self._lines: list[bytes] = []
        self.count = 0
        self.keep = keep
        self.events: list[tuple[float, str, str, str, str]] = []

    def record(self, topic: str, env: Envelope) -> None:
        self.count += 1
        # round(time, 6) (~7,700 instructions: a correctly rounded decimal conversion there and back)
        # as three float operations when that is provably the same double (see _ROUND6): ~2,000
        time = env.time
        if 0.0 < time < _FAST_BELOW:
            micros = time * 1e6
            whole = (micros + _ROUND6) - _ROUND6
            if -0.375 < micros - whole < 0.375:
                time = whole / 1e6
            elif _SPLIT_FROM <= time < _SPLIT_BELOW:  # near a half: the product exactly (see _SPLIT), ~1/4 of times
                high = time * _SPLIT
                high -= high - time
                time = (high * 1e6 + (((time - high) * 1e6 + _ROUND6) - _ROUND6)) / 1e6
            else:
                time = round(time, 6)
        else:
            time = round(time, 6)
        fields = [time, topic, env.type, env.source, env.id, env.key, env.payload]
        try:  # str keys only (every payload a schema checked): the same bytes, ~15 % fewer instructions
            line = _dumps(fields, option=_TRACE_STR_KEYS)
        except TypeError:  # a key that is not exactly a str: orjson refuses it without the option that writes it
            line = _dumps(fields, option=_TRACE_OPTIONS)
        lines = self._lines
        lines.append(line)
        if len(lines) >= _HASH_EVERY:
            self._hash.update(b"".join(lines))
            lines.clear()
        if self.keep and len(self.events) < self.keep:
            self.events.append((env.time, topic, env.type, env.source, env.id))

    @property
    def digest(self) -> str:
        lines = self._lines
        if lines:
            self._hash.update(b"".join(lines))
            lines.clear()
        return self._hash.hexdigest()


#: Each line: the message's fields as JSON (keys sorted, non-string keys allowed) and a newline.
_TRACE_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
#: The same without OPT_NON_STR_KEYS, tried first: orjson's path for str keys, which writes the same bytes
#: (sorted alike) and raises TypeError (JSONEncodeError) for any other key, a str subclass's too
_TRACE_STR_KEYS = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
_dumps = orjson.dumps
#: ``round(t, 6)`` is the double nearest to N / 10**6, N the integer nearest to t * 10**6 exactly (ties
#: to even). For 0 < t < 2.2e9, t * 1e6 is below 2**51, so its product in floats is off by at most 0.125
#: and adding then taking away 1.5 * 2**52 rounds it to the nearest integer (ties to even): when that
#: integer is less than 0.375 from the float product, it is N (no tie possible), and N / 1e6, one
#: correctly rounded division of two exact floats, is the double ``round`` gives (it parses N's digits,
#: correctly rounded). Otherwise (near a half, or out of range) ``round`` itself.
_ROUND6 = 6755399441055744.0
_FAST_BELOW = 2.2e9
#: Near a half, N from t * 10**6 exactly: Veltkamp's split (high = t * (2**27 + 1), high -= high - t) cuts t
#: into high (26 significant bits) and t - high (the rest, exact), each times 1e6 (20 bits) an exact
#: product. For 2**20 <= t < 2**31, high * 1e6 is an even integer (high a multiple of 2**(e - 25), e >= 20
#: t's exponent), so N = high * 1e6 + the nearest integer to (t - high) * 1e6 (ties to even, by _ROUND6:
#: the tie's parity is N's), exact below 2**53; N / 1e6 as above. ~150 instructions where round's are
#: ~7,700 (a virtual clock's times fall near a half about a quarter of the time). Checked against round
#: for 15 M times, ties and their neighbours among them (tests/bus/test_trace_time.py).
_SPLIT = 134217729.0
_SPLIT_FROM = 1048576.0
_SPLIT_BELOW = 2147483648.0
#: Lines hashed together (a few dozen kB of JSON at most; see TraceRecorder).
_HASH_EVERY = 256
