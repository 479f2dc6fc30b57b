"""The dead-letter channel: where every message that cannot be handled goes, with its reason.

Nothing is dropped silently. A message that fails to decode, has no schema, fails validation,
or makes its handler raise becomes a :class:`DeadLetter`; the channel counts it by reason,
keeps the latest in memory (bounded in count and in bytes), and hands it to every sink (the
``forge_message_dead_lettered`` hook, the SQL recorder, the dead-letter topic). A failing sink is
logged; the others still run.

A flood must not become a second flood (issue 11 §3): logging is one line per reason per
interval with a count (:class:`RateLimitedLog`), and a source that dead-letters more than
``quarantine_after`` letters within one second of the plant's clock is quarantined for
``quarantine_for`` seconds (:class:`Quarantine`): its letters are still counted by reason and in
``accounting()['quarantined']``, but no sink sees them. Quarantine starts and ends are logged and
reported to ``on_quarantine`` (the runtime publishes them), and the current quarantines are in
``/health`` and the run summary.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import Field

from forge_core.errors import TransportError
from forge_core.messages.envelope import Envelope, format_time
from forge_core.settings import Settings

log = logging.getLogger("forge.deadletter")

#: Reasons a message is dead-lettered.
DECODE_ERROR = "decode_error"
UNKNOWN_TYPE = "unknown_type"
INVALID = "invalid"
HANDLER_ERROR = "handler_error"
UNDELIVERABLE = "undeliverable"
REFUSED = "refused"
TOO_LARGE = "too_large"
#: Not a letter's reason: the reason of the ``forge.deadletter`` notice that a source was quarantined.
QUARANTINED = "quarantined"

DEAD_LETTER_TYPE = "forge.deadletter"
DEAD_LETTER_TOPIC = "forge/deadletter"

#: Bytes of the body (or of the message as JSON) a published dead letter carries.
EXCERPT_BYTES = 512

_ids = itertools.count(1)
_ID_PREFIX = f"{os.getpid():x}-{int(time.time()):x}"


class DeadLetterSettings(Settings):
    """``settings.dead_letters`` of the manifest: the bounds of the dead-letter path."""

    keep: int = Field(1000, ge=0, description="letters kept in memory (runtime.dead_letters.recent)")
    keep_bytes: int = Field(16 * 1024 * 1024, ge=0, description="bytes of letters kept in memory; the oldest go "
                                                                 "first")
    excerpt_bytes: int = Field(EXCERPT_BYTES, ge=0, le=2048,
                               description="bytes of the message a published forge.deadletter carries")
    publish: bool = Field(True, description="publish each letter as forge.deadletter on forge/deadletter/<reason>")
    max_published_per_second: int = Field(
        50, ge=1, description="forge.deadletter messages per second of the clock; beyond it letters are counted "
                              "as not_published (they are still recorded)")
    store_body_bytes: int = Field(64 * 1024, ge=0, description="bytes of the message kept in forge_dead_letters")
    queue_records: int = Field(10_000, ge=1, description="letters waiting for the SQL writer thread; beyond it, "
                                                         "and beyond queue_bytes, letters are counted as dropped")
    queue_bytes: int = Field(16 * 1024 * 1024, ge=1, description="bytes of letters waiting for the SQL writer")
    max_recorded_per_second: int = Field(
        5_000, ge=1, description="letters offered to SQL per second of the clock; beyond it they are counted as "
                                 "dropped")
    batch: int = Field(500, ge=1, description="letters written per SQL transaction, at most")
    flush_timeout: float = Field(5.0, ge=0, description="seconds the runtime waits at stop for the writer to flush; "
                                                        "what is left is counted as dropped")
    log_interval: float = Field(10.0, ge=0, description="one log line per reason per this many seconds, with the "
                                                        "count of letters in between")
    quarantine_after: int = Field(100, ge=1, description="dead letters from one source (envelope source, else "
                                                         "transport and topic) within one second that quarantine it")
    quarantine_for: float = Field(30.0, ge=0, description="seconds a flooding source's letters are counted, not "
                                                          "recorded, logged or published")


def _next_id() -> str:
    return f"dl-{_ID_PREFIX}-{next(_ids)}"


class MessageTooLarge(TransportError):
    """A transport refused a message over its size limit; the runtime dead-letters it as
    ``too_large`` without the body."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes refused: over the transport's max_message_bytes {limit}")
        self.size = size
        self.limit = limit


@dataclass
class DeadLetter:
    reason: str
    detail: str
    topic: str
    transport: str
    time: float
    errors: list[dict[str, str]] = field(default_factory=list)
    component: str | None = None
    envelope: Envelope | None = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: The reference a published dead letter carries: the row in ``forge_dead_letters`` has it too.
    id: str = field(default_factory=_next_id)
    #: Size of the refused message in bytes when the body is not kept (``too_large``).
    refused_size: int | None = None
    _content: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def message_type(self) -> str | None:
        return self.envelope.type if self.envelope is not None else None

    @property
    def source_key(self) -> str:
        """Who sent it, for quarantine: the envelope's source, else the transport and topic."""
        if self.envelope is not None and self.envelope.source:
            return f"{self.transport}:{self.envelope.source}"
        return f"{self.transport}:{self.topic}"

    def content(self) -> bytes:
        """The letter's message as bytes: the raw body, or the envelope as JSON (computed once)."""
        if self._content is None:
            if self.body is not None:
                self._content = self.body.encode("utf-8", errors="backslashreplace")
            elif self.envelope is not None:
                self._content = orjson.dumps(self.envelope.to_dict(), default=str)
            else:
                self._content = b""
        return self._content

    @property
    def size(self) -> int:
        """Bytes of the message (the refused size for a body not kept)."""
        return self.refused_size if self.refused_size is not None else len(self.content())

    def weight(self) -> int:
        """Approximate bytes this letter holds in memory (for byte-bounded stores and queues)."""
        return 256 + len(self.detail) + len(self.content()) + sum(len(k) + len(v) for k, v in self.headers.items())

    def excerpt(self, limit: int = EXCERPT_BYTES) -> tuple[str, bool]:
        """The first ``limit`` bytes of the message as text, and whether it was cut."""
        content = self.content()
        cut = content[:limit]
        return cut.decode("utf-8", errors="ignore"), len(content) > limit

    def to_payload(self, excerpt_bytes: int = EXCERPT_BYTES) -> dict[str, Any]:
        """The ``forge.deadletter`` message body (see ``schemas/forge.deadletter.json``): the reason,
        a bounded excerpt and the reference ``id``, never the whole message."""
        excerpt, truncated = self.excerpt(excerpt_bytes)
        return {
            "id": self.id,
            "reason": self.reason,
            "detail": self.detail[:1024],
            "topic": self.topic,
            "transport": self.transport,
            "component": self.component,
            "type": self.message_type,
            "time": format_time(self.time),
            "errors": [{"pointer": e["pointer"][:256], "message": e["message"][:256]} for e in self.errors[:10]],
            "size": self.size,
            "excerpt": excerpt,
            "truncated": truncated,
        }

    def to_record(self, body_bytes: int) -> dict[str, Any]:
        """The row for ``forge_dead_letters``: everything, with the body cut at ``body_bytes``."""
        content = self.content()
        return {
            "reason": self.reason, "detail": self.detail, "topic": self.topic, "transport": self.transport,
            "component": self.component, "message_type": self.message_type, "errors": list(self.errors),
            "headers": {"forge-dead-letter-id": self.id, **self.headers}, "received_at": self.time,
            "body": content[:body_bytes].decode("utf-8", errors="ignore"),
        }

    def __str__(self) -> str:
        where = f"{self.transport}:{self.topic}"
        who = f" for {self.component}" if self.component else ""
        first = f" ({self.errors[0]['pointer']}: {self.errors[0]['message']})" if self.errors else ""
        return f"dead letter [{self.reason}] {where}{who}: {self.detail[:300]}{first}"


Sink = Callable[[DeadLetter], None]


class RateLimitedLog:
    """One warning per reason per ``interval`` seconds; the letters in between are counted and the
    count is logged with the next line of that reason (or by :meth:`flush`)."""

    def __init__(self, interval: float = 10.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.monotonic = monotonic
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def letter(self, letter: DeadLetter) -> None:
        now = self.monotonic()
        last = self._last.get(letter.reason)
        if last is not None and now - last < self.interval:
            self._suppressed[letter.reason] += 1
            return
        self._last[letter.reason] = now
        more = self._suppressed.pop(letter.reason, 0)
        if more:
            log.warning("%s (and %d more [%s] dead letters in the last %.0f s)", letter, more, letter.reason,
                        now - last if last is not None else self.interval)
        else:
            log.warning("%s", letter)

    def flush(self) -> None:
        for reason, more in sorted(self._suppressed.items()):
            log.warning("%d more [%s] dead letters not logged one by one", more, reason)
        self._suppressed.clear()


@dataclass
class QuarantineEntry:
    source: str
    since: float
    until: float
    dropped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"since": format_time(self.since), "until": format_time(self.until), "dropped": self.dropped}


class Quarantine:
    """Per-source dead-letter rate in one-second windows of the plant's clock (letters' times); a
    source over ``after`` letters in a window is quarantined for ``duration`` seconds."""

    def __init__(self, after: int = 100, duration: float = 30.0, max_sources: int = 10_000) -> None:
        self.after = after
        self.duration = duration
        self.max_sources = max_sources
        self._windows: dict[str, tuple[int, int]] = {}  # source -> (second, count)
        self.active: dict[str, QuarantineEntry] = {}
        self.total = 0  # quarantines started

    def check(self, letter: DeadLetter) -> tuple[QuarantineEntry | None, QuarantineEntry | None]:
        """(the entry that holds this letter back or None, an entry that just ended or None)."""
        source, now = letter.source_key, letter.time
        ended = None
        entry = self.active.get(source)
        if entry is not None:
            if now < entry.until:
                entry.dropped += 1
                return entry, None
            ended = self.active.pop(source)
        second = int(now)
        window = self._windows.get(source)
        count = window[1] + 1 if window is not None and window[0] == second else 1
        if len(self._windows) >= self.max_sources and source not in self._windows:
            self._windows = {s: w for s, w in self._windows.items() if w[0] == second}  # forget old windows
        self._windows[source] = (second, count)
        if count > self.after:
            self._windows.pop(source, None)
            entry = self.active[source] = QuarantineEntry(source, now, now + self.duration, 1)
            self.total += 1
            return entry, ended
        return None, ended

    def expire(self, now: float) -> list[QuarantineEntry]:
        ended = [e for e in self.active.values() if now >= e.until]
        for entry in ended:
            del self.active[entry.source]
        return ended


class DeadLetterChannel:
    def __init__(self, *, keep: int = 1000, keep_bytes: int = 16 * 1024 * 1024, log_interval: float = 10.0,
                 quarantine_after: int = 100, quarantine_for: float = 30.0) -> None:
        self.counts: Counter[str] = Counter()
        self.recent: deque[DeadLetter] = deque()
        self.keep = keep
        self.keep_bytes = keep_bytes
        self.recent_bytes = 0
        self._weights: deque[int] = deque()
        self.log = RateLimitedLog(log_interval)
        self.quarantine = Quarantine(quarantine_after, quarantine_for)
        #: offered: handed to the sinks; quarantined: held back by a quarantine (counted only).
        self.stats: Counter[str] = Counter()
        #: Called with (entry, started) when a quarantine starts (True) or ends (False).
        self.on_quarantine: Callable[[QuarantineEntry, bool], None] | None = None
        #: Extra accounting (the SQL recorder's recorded/dropped/pending), merged into :meth:`accounting`.
        self.accounting_sources: list[Callable[[], dict[str, int]]] = []
        self._sinks: list[tuple[str, Sink]] = []

    def configure(self, *, keep: int, keep_bytes: int, log_interval: float, quarantine_after: int,
                  quarantine_for: float) -> None:
        self.keep, self.keep_bytes = keep, keep_bytes
        self.log.interval = log_interval
        self.quarantine.after, self.quarantine.duration = quarantine_after, quarantine_for
        self._trim()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add_sink(self, name: str, sink: Sink) -> None:
        self._sinks.append((name, sink))

    def accounting(self) -> dict[str, Any]:
        """Where every letter went: ``total`` = ``quarantined`` + ``offered``; of the offered, the SQL
        recorder (when there is one) says how many were ``recorded``, ``dropped`` or are ``pending``."""
        out: dict[str, Any] = {"total": self.total, "offered": self.stats["offered"],
                               "quarantined": self.stats["quarantined"], "kept_in_memory": len(self.recent),
                               "kept_bytes": self.recent_bytes}
        for source in self.accounting_sources:
            out.update(source())
        out["quarantines"] = {s: e.as_dict() for s, e in self.quarantine.active.items()}
        return out

    def put(self, letter: DeadLetter) -> None:
        self.counts[letter.reason] += 1
        held, ended = self.quarantine.check(letter)
        if ended is not None:
            self._quarantine_changed(ended, False)
        if held is not None:
            self.stats["quarantined"] += 1
            if held.dropped == 1:  # just started: this letter is the one over the limit
                self._quarantine_changed(held, True)
            return
        self.stats["offered"] += 1
        self._remember(letter)
        self.log.letter(letter)
        for name, sink in self._sinks:
            try:
                sink(letter)
            except Exception:  # one broken sink must not lose the letter for the others
                log.exception("dead-letter sink %r failed for %s", name, letter)

    def expire_quarantines(self, now: float) -> None:
        """End the quarantines due by ``now`` (the runtime calls it; a new letter also ends its own)."""
        for entry in self.quarantine.expire(now):
            self._quarantine_changed(entry, False)

    def _quarantine_changed(self, entry: QuarantineEntry, started: bool) -> None:
        if started:
            log.warning("dead letters: source %s quarantined for %.0f s after more than %d dead letters in one "
                        "second; its letters are counted, not recorded", entry.source, self.quarantine.duration,
                        self.quarantine.after)
        else:
            log.warning("dead letters: quarantine of %s ended; %d dead letters were counted, not recorded",
                        entry.source, entry.dropped)
        if self.on_quarantine is not None:
            try:
                self.on_quarantine(entry, started)
            except Exception:
                log.exception("dead letters: reporting the quarantine of %s failed", entry.source)

    def _remember(self, letter: DeadLetter) -> None:
        weight = letter.weight()
        if weight > self.keep_bytes:  # one letter larger than the whole store: keep it without its message
            letter = DeadLetter(letter.reason, letter.detail[:1024], letter.topic, letter.transport, letter.time,
                                letter.errors[:10], letter.component, None, None, {}, letter.id, letter.size)
            weight = letter.weight()
        self.recent.append(letter)
        self._weights.append(weight)
        self.recent_bytes += weight
        self._trim()

    def _trim(self) -> None:
        while self.recent and (len(self.recent) > self.keep or self.recent_bytes > self.keep_bytes):
            self.recent.popleft()
            self.recent_bytes -= self._weights.popleft()
