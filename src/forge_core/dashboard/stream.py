"""Server-sent events: one snapshot per interval, built once and shared by every open page.

Why SSE and not WebSocket: the page only listens (actions are plain POSTs), SSE is plain HTTP
(proxies, curl, no upgrade), and the browser's EventSource reconnects by itself. The snapshot is
built only while a page is open, once per interval however many pages there are; a page that
reads slowly gets the newest snapshot, never a backlog (a one-slot queue per page)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

log = logging.getLogger("forge.dashboard")


class Broadcaster:
    def __init__(self, snapshot: Callable[[], dict[str, Any]], interval: float) -> None:
        self._snapshot, self.interval = snapshot, interval
        self._pages: set[asyncio.Queue[bytes]] = set()
        self._task: asyncio.Task[None] | None = None
        self.closing = asyncio.Event()
        self.pushes = 0

    @property
    def pages(self) -> int:
        return len(self._pages)

    def frame(self) -> bytes:
        try:
            data = orjson.dumps(self._snapshot(), default=str)
        except Exception as exc:  # the page shows why, instead of a stream that silently stops
            log.exception("dashboard snapshot failed")
            data = orjson.dumps({"error": f"snapshot failed: {type(exc).__name__}: {exc}"})
        return b"event: state\ndata: " + data + b"\n\n"

    async def _run(self) -> None:
        while self._pages and not self.closing.is_set():
            frame = self.frame()
            self.pushes += 1
            for queue in self._pages:
                if queue.full():
                    queue.get_nowait()  # newest wins: a slow page skips, never queues up
                queue.put_nowait(frame)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self.closing.wait()
        self._task = None

    async def stream(self, extra: Callable[[], bytes] | None = None) -> AsyncIterator[bytes]:
        """The frames of one page; ``extra()`` (the page's own live tail) follows each state frame."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
        self._pages.add(queue)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="forge-dashboard-push")
        else:
            queue.put_nowait(self.frame())  # a new page need not wait for the next push
        getter: asyncio.Future[bytes] | None = None
        try:
            yield b"retry: 2000\n\n"
            while not self.closing.is_set():
                getter = asyncio.ensure_future(queue.get())
                closing = asyncio.ensure_future(self.closing.wait())
                try:
                    done, _ = await asyncio.wait({getter, closing}, timeout=15.0,
                                                 return_when=asyncio.FIRST_COMPLETED)
                finally:
                    closing.cancel()
                if getter in done:
                    yield getter.result()
                    if extra is not None:
                        yield extra()
                elif not self.closing.is_set():
                    yield b": keep-alive\n\n"  # proxies close idle connections
        finally:  # also when the page went away mid-wait (the server closes this generator)
            if getter is not None:
                getter.cancel()
            self._pages.discard(queue)

    def close(self) -> None:
        self.closing.set()
