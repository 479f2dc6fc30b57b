"""The dead-letter channel: where every message that cannot be handled goes, with its reason.

Nothing is dropped silently. A message that fails to decode, has no schema, fails validation,
or makes its handler raise becomes a :class:`DeadLetter`; the channel counts it by reason,
keeps the latest in memory, and hands it to every sink (the ``forge_message_dead_lettered``
hook, the SQL store, the transport's dead-letter topic). A failing sink is logged; the others
still run.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forge_core.messages.envelope import Envelope, format_time

log = logging.getLogger("forge.deadletter")

#: Reasons a message is dead-lettered.
DECODE_ERROR = "decode_error"
UNKNOWN_TYPE = "unknown_type"
INVALID = "invalid"
HANDLER_ERROR = "handler_error"
UNDELIVERABLE = "undeliverable"
REFUSED = "refused"

DEAD_LETTER_TYPE = "forge.deadletter"
DEAD_LETTER_TOPIC = "forge/deadletter"


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

    @property
    def message_type(self) -> str | None:
        return self.envelope.type if self.envelope is not None else None

    def to_payload(self) -> dict[str, Any]:
        """The ``forge.deadletter`` message body (see ``schemas/forge.deadletter.json``)."""
        return {
            "reason": self.reason,
            "detail": self.detail,
            "topic": self.topic,
            "transport": self.transport,
            "component": self.component,
            "time": format_time(self.time),
            "errors": list(self.errors),
            "message": self.envelope.to_dict() if self.envelope is not None else None,
            "body": self.body,
            "headers": dict(self.headers),
        }

    def __str__(self) -> str:
        where = f"{self.transport}:{self.topic}"
        who = f" for {self.component}" if self.component else ""
        first = f" ({self.errors[0]['pointer']}: {self.errors[0]['message']})" if self.errors else ""
        return f"dead letter [{self.reason}] {where}{who}: {self.detail}{first}"


Sink = Callable[[DeadLetter], None]


class DeadLetterChannel:
    def __init__(self, *, keep: int = 1000) -> None:
        self.counts: Counter[str] = Counter()
        self.recent: deque[DeadLetter] = deque(maxlen=keep)
        self._sinks: list[tuple[str, Sink]] = []

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add_sink(self, name: str, sink: Sink) -> None:
        self._sinks.append((name, sink))

    def put(self, letter: DeadLetter) -> None:
        self.counts[letter.reason] += 1
        self.recent.append(letter)
        log.warning("%s", letter)
        for name, sink in self._sinks:
            try:
                sink(letter)
            except Exception:  # one broken sink must not lose the letter for the others
                log.exception("dead-letter sink %r failed for %s", name, letter)
