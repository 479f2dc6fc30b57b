"""A broker's backlog delivered the moment a subscription exists, for a component's tests.

A persistent MQTT session's queue, a Kafka group's uncommitted offsets or a retained message reach a
handler as soon as its subscription is made, while the component's ``start()`` may still await its
next line. :func:`backlog_on_subscribe` makes the in-memory bus do the same in a :class:`TestPlant`:
right after ``component`` subscribes ``handler``, the message is published on that subscription's
topic and delivered before ``start()`` goes on. A handler that reads state ``start()`` makes later
fails there (a ``handler_error`` dead letter), as it would against a real broker after a restart.
``forge check-plugin`` finds the same mistake in the source (``forge_core.cli.start_order``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from forge_core.components.context import ComponentContext

__all__ = ["backlog_on_subscribe"]


@contextmanager
def backlog_on_subscribe(component: str, handler: str, type_: str, payload: Any, *, topic: str | None = None,
                         key: str | None = None) -> Iterator[list[str]]:
    """While the block runs, each instance of ``component`` (the manifest's name: every replica) that
    subscribes its method ``handler`` gets one ``type_`` message with ``payload`` at once, on ``topic``
    (default: the subscription's pattern, which then must have no wildcard). Yields the names of the
    instances it was delivered to, filled as they start."""
    subscribe = ComponentContext.subscribe
    delivered: list[str] = []

    async def subscribe_then_deliver(self: ComponentContext, pattern: str, fn: Any, **options: Any) -> Any:
        sub = await subscribe(self, pattern, fn, **options)
        if self.component == component and getattr(fn, "__name__", "") == handler:
            if topic is None and ("+" in pattern.split("/") or "#" in pattern.split("/")):
                raise ValueError(f"backlog_on_subscribe: {self.name}.{handler} subscribes the pattern {pattern!r}; "
                                 f"name the topic to publish on (topic=...)")
            await self.publish(topic or pattern, type_, payload, key=key)
            for _ in range(3):  # the bus's delivery runs before start() goes on
                await asyncio.sleep(0)
            delivered.append(self.name)
        return sub

    ComponentContext.subscribe = subscribe_then_deliver  # type: ignore[method-assign,assignment]
    try:
        yield delivered
    finally:
        ComponentContext.subscribe = subscribe  # type: ignore[method-assign]
