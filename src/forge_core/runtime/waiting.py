"""Waiting for a plant's stop: a stop request or the end of its run's duration, on its own clock."""

from __future__ import annotations

import asyncio
from typing import Protocol


class Killable(Protocol):
    """A component instance another process runs (see ``Runtime.children``)."""

    async def kill(self) -> None: ...

    def revive(self) -> object: ...


async def wait_for_stop(stop: asyncio.Event, duration: float | None) -> bool:
    """Wait until ``stop`` is set or ``duration`` seconds of the running clock pass (None: no
    limit); True when the duration ran out. ``asyncio.timeout``, not ``wait_for``: on 3.11
    ``wait_for`` can swallow a cancellation that lands as the event is set."""
    try:
        async with asyncio.timeout(duration):
            await stop.wait()
    except TimeoutError:
        return True
    return False
