"""What librdkafka says, rate-limited per kind of line.

While a broker is down every client of every process (the admin client, the producer, one consumer
per subscription) reports each failed reconnect: librdkafka's ``FAIL ... Connect to ... failed:
Connection refused`` log line and an ``error_cb`` ``_TRANSPORT`` error, each a few times a second.
The fault drills on the distributed pasta plant counted 170,000-290,000 such lines per run on a
2-core machine. This module lets through the first line of each *kind* — the same message from the
same broker, numbers aside (``after 0ms``/``after 3ms``, librdkafka's own "N identical error(s)
suppressed"), whichever client of the transport said it — and then at most one per ``every``
seconds, with the count of the lines it held back. A new kind is never held back: a different
error, a different broker, or a state change librdkafka reports (``1/1 brokers are down``) is
logged at once. When a kind goes quiet (the broker is back) the held-back count is still reported,
by :meth:`RateLimitedLog.flush` (the producer's poll thread calls it; ``close`` forces it).

An instance is passed as librdkafka's ``logger`` (confluent-kafka calls ``logger.log(level,
"%s [%s] %s", facility, client, message)`` with Python levels) and used for ``error_cb`` and the
consumers' fetch errors through :meth:`RateLimitedLog.emit`. Any thread may call it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["RateLimitedLog", "kind_of"]

_THREAD = re.compile(r"^\[thrd:[^\]]*\]:\s*")
_IDENTICAL = re.compile(r",?\s*\d+ identical error\(s\) suppressed")
_NUMBER = re.compile(r"\d+")
#: kinds remembered at most; the oldest is forgotten first (its held-back count reported)
MAX_KINDS = 512


def kind_of(text: str) -> str:
    """The kind of a librdkafka message: the broker it names (``host:port/id``, verbatim) and the
    rest with its numbers blanked, so repeats differing only in a duration or count are one kind."""
    text = _IDENTICAL.sub("", _THREAD.sub("", text))
    broker, sep, rest = text.partition(": ")
    if not sep or "/" not in broker or " " in broker:  # no broker prefix: the whole line is the message
        broker, rest = "", text
    return f"{broker}|{_NUMBER.sub('#', rest)}"


@dataclass
class _Kind:
    level: int
    line: str  # the latest line of this kind
    logged_at: float
    last_at: float
    held: int = 0


class RateLimitedLog:
    """A rate limit per kind of line in front of ``logger`` (see the module's docstring)."""

    def __init__(self, logger: logging.Logger, every: float, *, name: str, stats: Counter[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.every = every
        self.name = name
        #: ``log_lines`` let through, ``log_suppressed`` held back (shown by the transport's health)
        self.stats: Counter[str] = stats if stats is not None else Counter()
        self._clock = clock
        self._kinds: dict[str, _Kind] = {}
        self._lock = threading.Lock()
        self._flushed_at = clock()

    # -- librdkafka's logger interface -----------------------------------------------------------
    def log(self, level: int, msg: str, *args: Any) -> None:
        if len(args) == 3:  # confluent-kafka: "%s [%s] %s" facility, client name, message
            facility, client, text = (str(a) for a in args)
            self.emit(level, f"{facility}|{kind_of(text)}",
                      f"kafka {self.name}: librdkafka {facility} [{client}] {_THREAD.sub('', text)}")
        else:
            text = msg % args if args else msg
            self.emit(level, kind_of(text), f"kafka {self.name}: librdkafka {text}")

    # -- any line ----------------------------------------------------------------------------------
    def emit(self, level: int, kind: str, line: str) -> bool:
        """Log ``line`` unless a line of ``kind`` was logged less than ``every`` s ago (then count
        it); True if it was logged."""
        now = self._clock()
        summaries: list[tuple[int, str]] = []
        with self._lock:
            entry = self._kinds.get(kind)
            if entry is not None and self.every > 0 and now - entry.logged_at < self.every:
                entry.held += 1
                entry.line, entry.last_at = line, now
                self.stats["log_suppressed"] += 1
                out = None
            else:
                if entry is not None and entry.held:
                    line = f"{line} [{entry.held} similar line(s) suppressed in the last {now - entry.logged_at:.0f}s]"
                self._kinds.pop(kind, None)  # re-inserted last: the dict stays in order of logging
                self._kinds[kind] = _Kind(level, line, now, now)
                if len(self._kinds) > MAX_KINDS:
                    summaries += self._forget(next(iter(self._kinds)), now)
                self.stats["log_lines"] += 1
                out = (level, line)
            if now - self._flushed_at >= 1.0:
                summaries += self._due(now, force=False)
        for summary in summaries:
            self.logger.log(*summary)
        if out is not None:
            self.logger.log(*out)
        return out is not None

    def flush(self, force: bool = False) -> None:
        """Report the held-back lines of each kind quiet for ``every`` s (every kind's with
        ``force``, at close): a flood that stopped still says how big it was."""
        now = self._clock()
        if not force and now - self._flushed_at < 1.0:
            return
        with self._lock:
            summaries = self._due(now, force=force)
        for summary in summaries:
            self.logger.log(*summary)

    # -- under the lock ------------------------------------------------------------------------------
    def _due(self, now: float, *, force: bool) -> list[tuple[int, str]]:
        self._flushed_at = now
        out: list[tuple[int, str]] = []
        for kind, entry in list(self._kinds.items()):
            # a kind quiet for a whole interval: the flood stopped (or never was); one still going
            # is reported by its next line in emit()
            if force or now - entry.last_at >= self.every:
                out += self._forget(kind, now)
        return out

    def _forget(self, kind: str, now: float) -> list[tuple[int, str]]:
        """Drop ``kind`` (its next line is logged as a first one); its held-back count, if any."""
        entry = self._kinds.pop(kind)
        if not entry.held:
            return []
        self.stats["log_lines"] += 1
        line = (f"kafka {self.name}: {entry.held} similar line(s) suppressed in the last "
                f"{now - entry.logged_at:.0f}s, the last {now - entry.last_at:.0f}s ago: {entry.line}")
        return [(entry.level, line)]
