"""The data changes a source holds until the bus takes them: bounded, in order, nothing lost silently.

Notifications are appended as they arrive; :meth:`Backlog.publish` takes up to a batch off the
front, publishes it one ``publish_batch`` per topic (order is kept per topic, hence per tag),
and puts back, at the front and in order, whatever a failing publish did not send. Beyond
``limit`` waiting changes the oldest are dropped and counted. Its depth (waiting plus in flight)
is what the backpressure controller reads.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from forge_core import MessageRejected

__all__ = ["Backlog", "Pending", "PublishBatch"]

#: ``publish_batch(topic, payloads, keys)``: the component's ``ctx.publish_batch`` for one type.
PublishBatch = Callable[[str, Sequence[Any], Sequence[str | None]], Awaitable[object]]

_INDEX = re.compile(r"^\[(\d+)\]")


@dataclass(frozen=True)
class Pending:
    topic: str
    key: str
    payload: dict[str, Any]


class Backlog:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting: deque[Pending] = deque()
        self.in_flight = 0
        self.received = 0
        self.published = 0
        self.dropped = 0
        self.rejected = 0

    @property
    def depth(self) -> int:
        return len(self.waiting) + self.in_flight

    def add(self, item: Pending) -> bool:
        """Queue ``item``; False when the oldest waiting change had to be dropped to make room."""
        self.received += 1
        full = len(self.waiting) >= self.limit
        if full:
            self.waiting.popleft()
            self.dropped += 1
        self.waiting.append(item)
        return not full

    async def publish(self, send: PublishBatch, batch: int) -> int:
        """Publish up to ``batch`` changes; returns how many left. Raises what ``send`` raised
        (other than a validation refusal) after putting the unsent ones back."""
        taken = [self.waiting.popleft() for _ in range(min(batch, len(self.waiting)))]
        self.in_flight = len(taken)
        groups: dict[str, list[Pending]] = {}
        for item in taken:
            groups.setdefault(item.topic, []).append(item)
        sent = 0
        unsent: list[Pending] = []
        pending = list(groups.items())
        try:
            for index, (topic, items) in enumerate(pending):
                try:
                    sent += await self._send_group(send, topic, items)
                except BaseException:
                    unsent = [item for _, rest in pending[index:] for item in rest]
                    raise
        finally:
            if unsent:
                self.waiting.extendleft(reversed(unsent))
            self.in_flight = 0
            self.published += sent
        return sent

    async def _send_group(self, send: PublishBatch, topic: str, items: list[Pending]) -> int:
        while items:
            try:
                await send(topic, [i.payload for i in items], [i.key for i in items])
                return len(items)
            except MessageRejected as exc:  # the bus dead-lettered the invalid ones: send the others
                invalid = {int(m.group(1)) for e in exc.errors if (m := _INDEX.match(e.get("pointer", "")))}
                if not invalid:
                    raise
                self.rejected += len(invalid)
                items[:] = [item for index, item in enumerate(items) if index not in invalid]  # the caller sees it
        return 0
