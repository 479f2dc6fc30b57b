"""The runtime's dead-letter sinks: the hook, metrics, the SQL recorder (off the event loop) and
the ``forge.deadletter`` publisher, all bounded (issue 11 §3).

* :class:`SqlRecorder` hands letters to a writer thread through a queue bounded in letters and
  bytes and a rate bound per second of the clock; the thread writes them in batches (one
  transaction each). A letter that does not fit is counted as ``dropped``, never lost silently;
  ``recorded + dropped + pending`` is every letter offered. At stop the thread gets
  ``flush_timeout`` seconds; what is still queued then is counted as dropped. Under the virtual
  clock the letters are written inline (a simulation has no wall time to save, and stays
  deterministic).
* :class:`DeadLetterPublisher` publishes the reason, a bounded excerpt and the reference id
  (never the message), at most ``max_published_per_second``, and announces quarantines.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from forge_core.checks import Check
from forge_core.messages import deadletter as dl
from forge_core.messages.deadletter import (
    DeadLetter,
    DeadLetterChannel,
    DeadLetterSettings,
    MessageTooLarge,
    QuarantineEntry,
)
from forge_core.messages.envelope import Envelope, RawMessage, format_time
from forge_core.transport.base import UndeliverableCallback

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from forge_core.bus import MessageBus
    from forge_core.clock import Clock
    from forge_core.plugins import Plugins
    from forge_core.telemetry import Telemetry
    from forge_core.transport.base import Transport

__all__ = ["DeadLetterPublisher", "DeadLetterSinks", "RateBound", "SqlRecorder", "accounting_check", "merge_accounting",
           "undeliverable_reporter"]

log = logging.getLogger("forge.deadletter")


class RateBound:
    """At most ``per_second`` events per whole second of the times given (the plant's clock)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._second = -1
        self._count = 0

    def allow(self, now: float) -> bool:
        second = int(now)
        if second != self._second:
            self._second, self._count = second, 0
        self._count += 1
        return self._count <= self.per_second


class SqlRecorder:
    """Dead letters into ``forge_dead_letters`` from a writer thread, in batches, bounded."""

    def __init__(self, engine: Callable[[], Engine], settings: DeadLetterSettings, *, threaded: bool = True) -> None:
        from forge_core.storage.dead_letters import SqlDeadLetterStore

        self._engine = engine
        self._store_type = SqlDeadLetterStore
        self.settings = settings
        self.threaded = threaded
        self.stats: Counter[str] = Counter()
        self._rate = RateBound(settings.max_recorded_per_second)
        self._queue: deque[tuple[DeadLetter, int]] = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._closing = False
        self._writing = 0
        self._thread: threading.Thread | None = None
        self._failures_logged = 0.0

    # -- on the event loop -------------------------------------------------------------------
    def offer(self, letter: DeadLetter) -> None:
        """Queue ``letter`` for the writer (O(1) on the loop), or count it as dropped."""
        s = self.settings
        if not self._rate.allow(letter.time):
            self._count("dropped_rate", 1)
            return
        if not self.threaded:
            self._write([letter])
            return
        weight = letter.weight()
        with self._cond:
            if self._closing or len(self._queue) >= s.queue_records or self._queued_bytes + weight > s.queue_bytes:
                self._count("dropped_queue_full", 1)
                return
            self._queue.append((letter, weight))
            self._queued_bytes += weight
            self._cond.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="forge-dead-letters", daemon=True)
            self._thread.start()

    def _count(self, why: str, n: int) -> None:
        with self._cond:  # the loop and the writer thread both count
            self.stats["dropped"] += n
            self.stats[why] += n

    def accounting(self) -> dict[str, int]:
        with self._cond:
            pending = len(self._queue) + self._writing
        return {"recorded": self.stats["recorded"], "dropped": self.stats["dropped"], "pending": pending,
                "dropped_rate": self.stats["dropped_rate"], "dropped_queue_full": self.stats["dropped_queue_full"],
                "dropped_write_failed": self.stats["dropped_write_failed"],
                "dropped_at_stop": self.stats["dropped_at_stop"]}

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return  # closing and flushed
                n = min(len(self._queue), self.settings.batch)
                batch = [self._queue.popleft() for _ in range(n)]
                self._queued_bytes -= sum(w for _, w in batch)
                self._writing = n
            try:
                self._write([letter for letter, _ in batch])
            finally:
                with self._cond:
                    self._writing = 0
                    self._cond.notify_all()

    def _write(self, letters: list[DeadLetter]) -> None:
        body_bytes = self.settings.store_body_bytes
        try:
            written = self._store_type(self._engine()).save_many([letter.to_record(body_bytes) for letter in letters])
        except Exception as exc:  # a broken database must not take the plant down: count what was lost
            self._count("dropped_write_failed", len(letters))
            now = time.monotonic()
            if now - self._failures_logged > 10.0:
                self._failures_logged = now
                log.error("dead letters: writing %d to forge_dead_letters failed (%s: %s); counted as dropped",
                          len(letters), type(exc).__name__, exc)
            return
        with self._cond:
            self.stats["recorded"] += written

    def close(self, timeout: float) -> None:
        """Let the writer flush for up to ``timeout`` seconds (blocking: call it off the loop); count
        what is left as dropped."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            left = len(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
        if left:
            self._count("dropped_at_stop", left)
            log.error("dead letters: %d not written to forge_dead_letters within flush_timeout %gs at stop; "
                      "counted as dropped", left, timeout)


class DeadLetterPublisher:
    """``forge.deadletter`` on ``forge/deadletter/<reason>``: reason, excerpt, reference id."""

    def __init__(self, bus: MessageBus, source: str, settings: DeadLetterSettings) -> None:
        self.bus = bus
        self.source = source
        self.settings = settings
        self._rate = RateBound(settings.max_published_per_second)
        self.stats: Counter[str] = Counter()
        self.pending: set[asyncio.Task[Any]] = set()
        #: Set by :meth:`aclose`: the transports close after it, so a letter made while they close
        #: (a record a transport gives up on at close) is counted ``not_published``, still recorded.
        self.closed = False

    def letter(self, letter: DeadLetter) -> None:
        if letter.topic.startswith(dl.DEAD_LETTER_TOPIC):
            return  # never dead-letter a dead letter into a loop
        if self.closed or not self._rate.allow(letter.time):
            self.stats["not_published"] += 1
            return
        self._send(letter.reason, letter.to_payload(self.settings.excerpt_bytes))

    def quarantine(self, entry: QuarantineEntry, started: bool) -> None:
        transport, _, topic = entry.source.partition(":")
        what = "started" if started else "ended"
        self._send(dl.QUARANTINED, {
            "reason": dl.QUARANTINED, "source": entry.source, "transport": transport, "topic": topic,
            "detail": f"quarantine {what}: dead letters of {entry.source} are counted, not recorded, until "
                      f"{format_time(entry.until)}", "time": format_time(entry.since if started else entry.until),
            "until": format_time(entry.until), "dropped": entry.dropped, "errors": [],
        })

    def _send(self, reason: str, payload: dict[str, Any]) -> None:
        if self.closed:
            self.stats["not_published"] += 1
            return
        envelope = self.bus.build(dl.DEAD_LETTER_TYPE, payload, source=self.source)
        task = asyncio.ensure_future(self.bus.send(f"{dl.DEAD_LETTER_TOPIC}/{reason}", envelope))
        self.pending.add(task)
        task.add_done_callback(self._done)
        self.stats["published"] += 1

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.stats["publish_failed"] += 1

    async def aclose(self) -> None:
        self.closed = True
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)


def undeliverable_reporter(channel: DeadLetterChannel, clock: Clock, tname: str) -> UndeliverableCallback:
    """A transport's ``on_undeliverable``: a dead letter per message it gave up on; a message the
    transport refused as too large (:class:`MessageTooLarge`) is ``too_large``, without its body."""
    def report(topic: str, message: Envelope | RawMessage, exc: BaseException) -> None:
        if isinstance(exc, MessageTooLarge):
            channel.put(DeadLetter(dl.TOO_LARGE, str(exc), topic, tname, clock.time(), [], None, None, None,
                                   dict(message.headers) if isinstance(message, RawMessage) else {},
                                   refused_size=exc.size))
            return
        envelope = message if isinstance(message, Envelope) else None
        body = message.body.decode("utf-8", errors="replace") if isinstance(message, RawMessage) else None
        headers = dict(message.headers) if isinstance(message, RawMessage) else {}
        channel.put(DeadLetter(dl.UNDELIVERABLE, f"{type(exc).__name__}: {exc}", topic, tname, clock.time(), [],
                               None, envelope, body, headers))
    return report


class DeadLetterSinks:
    """Every sink of a runtime's dead-letter channel, configured from ``settings.dead_letters``."""

    def __init__(self, channel: DeadLetterChannel, settings: DeadLetterSettings, *, plugins: Plugins,
                 telemetry: Telemetry | None, engine: Callable[[], Engine] | None, bus: MessageBus | None,
                 plant: str, clock: Clock, transports: dict[str, Transport], virtual: bool) -> None:
        self.channel = channel
        self.settings = settings
        self.clock = clock
        channel.configure(keep=settings.keep, keep_bytes=settings.keep_bytes, log_interval=settings.log_interval,
                          quarantine_after=settings.quarantine_after, quarantine_for=settings.quarantine_for)
        if plugins.implemented("forge_message_dead_lettered"):  # ~8 µs a letter through pluggy otherwise
            channel.add_sink("hook", plugins.message_dead_lettered)
        if telemetry is not None:
            counter = telemetry.messages_dead_lettered
            channel.add_sink("metrics", lambda letter: counter.add(1, {"reason": letter.reason}))
        self.recorder = SqlRecorder(engine, settings, threaded=not virtual) if engine is not None else None
        if self.recorder is not None:
            channel.add_sink("sql", self.recorder.offer)
            channel.accounting_sources.append(self.recorder.accounting)
        self.publisher = DeadLetterPublisher(bus, f"forge:{plant}", settings) if bus is not None else None
        if self.publisher is not None:
            if settings.publish:
                channel.add_sink("publish", self.publisher.letter)
            channel.on_quarantine = self.publisher.quarantine
            publisher = self.publisher
            channel.accounting_sources.append(lambda: {"published": publisher.stats["published"],
                                                       "not_published": publisher.stats["not_published"]})
        for transport in transports.values():
            transport.on_undeliverable = undeliverable_reporter(channel, clock, transport.name)

    def accounting(self) -> dict[str, Any]:
        """The channel's accounting, quarantines that are over ended first."""
        self.channel.expire_quarantines(self.clock.time())
        return self.channel.accounting()

    async def close_publisher(self) -> None:
        """Publish what is pending while the transports are up; later letters are not published."""
        if self.publisher is not None:
            await self.publisher.aclose()

    async def aclose(self) -> None:
        """Publish what is pending, then flush the writer within ``flush_timeout`` (off the loop).
        The runtime calls :meth:`close_publisher` before closing the transports and this after, so
        the letters of records a transport gives up on while closing are still recorded."""
        await self.close_publisher()
        self.channel.log.flush()
        if self.recorder is not None:
            if self.recorder.threaded:
                await asyncio.to_thread(self.recorder.close, self.settings.flush_timeout)
            else:
                self.recorder.close(self.settings.flush_timeout)


def merge_accounting(parts: list[tuple[str, dict[str, Any]]], *, lives_without_summary: int = 0) -> dict[str, Any]:
    """The dead-letter accounting of a plant run as several processes: each counter summed over
    the ``(process, accounting)`` parts (each a summary's ``extra.dead_letters``), the active
    quarantines keyed ``process/source``, each process's ``total`` under ``by_process``.
    ``lives_without_summary`` (SIGKILLed lives) is carried: their letters cannot be counted."""
    merged: Counter[str] = Counter()
    quarantines: dict[str, Any] = {}
    by_process: Counter[str] = Counter()
    for process, accounting in parts:
        for key, value in accounting.items():
            if key == "quarantines":
                quarantines.update({f"{process}/{source}": entry for source, entry in value.items()})
            elif isinstance(value, int) and not isinstance(value, bool):
                merged[key] += value
        by_process[process] += int(accounting.get("total", 0))
    out: dict[str, Any] = dict(sorted(merged.items()))
    out["quarantines"] = quarantines
    out["by_process"] = dict(sorted(by_process.items()))
    out["lives_without_summary"] = lives_without_summary
    return out


def accounting_check(parts: list[tuple[str, dict[str, Any]]], component: str = "dead letters") -> Check:
    """Every dead letter of every process accounted for: per process, ``total = quarantined +
    offered`` and, where an SQL recorder kept them, ``offered = recorded + dropped``, none pending."""
    problems: list[str] = []
    total = 0
    for process, a in parts:
        total += int(a.get("total", 0))
        if a.get("total", 0) != a.get("quarantined", 0) + a.get("offered", 0):
            problems.append(f"{process}: total {a.get('total')} != quarantined {a.get('quarantined')} + "
                            f"offered {a.get('offered')}")
        if "recorded" in a and (a["offered"] != a["recorded"] + a["dropped"] + a["pending"] or a["pending"]):
            problems.append(f"{process}: offered {a['offered']} != recorded {a['recorded']} + dropped "
                            f"{a['dropped']} (+ {a['pending']} pending)")
    detail = "; ".join(problems) if problems else f"{total} letters in {len(parts)} summaries"
    return Check("every dead letter accounted for", not problems, detail, component)
