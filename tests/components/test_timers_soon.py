"""ctx.publish_soon and ctx.run_soon (forge_core.components.timers): a publish, or any coroutine, run from sync
code at once up to where it would wait, the rest finished in a task of the component."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from forge_core import TransportError
from forge_core.components.timers import publish_soon, run_soon


class Publisher:
    """What publish_soon and run_soon ask of the context: its publish (at once, waiting, failing) and its spawn."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []

    def spawn(self, coro: Awaitable[Any], *, name: str = "") -> asyncio.Task[Any]:
        self.tasks.append(task := asyncio.ensure_future(coro))
        return task

    def publish(self, topic: str, type_: str, payload: dict[str, Any], **kw: Any) -> Any:
        return getattr(self, topic)(payload)

    async def at_once(self, payload: dict[str, Any]) -> str:
        return f"sent {payload['n']}"

    async def waits(self, payload: dict[str, Any]) -> str:
        await asyncio.sleep(0)
        return f"sent {payload['n']}"

    async def waits_and_fails(self, payload: dict[str, Any]) -> str:
        await asyncio.sleep(0)
        raise TransportError("timed out (test)")

    async def refused(self, payload: dict[str, Any]) -> str:
        raise TransportError("broker unreachable (test)")


def test_publish_soon_ends_at_once_without_a_task_or_in_a_task_when_the_transport_waits() -> None:
    async def main() -> None:
        ctx: Any = Publisher()
        done: list[str] = []
        failed: list[tuple[str, dict[str, int]]] = []

        def send(how: str, payload: dict[str, int]) -> asyncio.Task[None] | None:
            return publish_soon(ctx, how, "test.reading", payload, on_published=done.append,
                                on_failed=lambda exc, p: failed.append((str(exc), p)))

        p1, p2, p3, p4 = ({"n": i} for i in range(1, 5))
        assert send("at_once", p1) is None and done == ["sent 1"] and not ctx.tasks
        assert send("refused", p2) is None and failed == [("broker unreachable (test)", p2)]
        waiting, failing = send("waits", p3), send("waits_and_fails", p4)
        assert waiting is not None and failing is not None and done == ["sent 1"], "not done yet"
        await asyncio.gather(waiting, failing)
        assert done == ["sent 1", "sent 3"] and failed[1:] == [("timed out (test)", p4)]

    asyncio.run(main())


def test_publish_soon_without_on_failed_raises_the_transport_s_error() -> None:
    async def main() -> None:
        ctx: Any = Publisher()
        with pytest.raises(TransportError, match="unreachable"):
            publish_soon(ctx, "refused", "test.reading", {"n": 1})
        task = publish_soon(ctx, "waits_and_fails", "test.reading", {"n": 2})
        assert task is not None
        with pytest.raises(TransportError, match="timed out"):
            await task

    asyncio.run(main())


def test_run_soon_ends_at_once_or_finishes_in_a_task_that_cancels_it() -> None:
    async def main() -> None:
        ctx: Any = Publisher()
        steps: list[str] = []

        async def work(waits: int, fails: bool = False) -> None:
            steps.append("first")
            for _ in range(waits):
                await asyncio.sleep(0)
            if fails:
                raise RuntimeError("second step failed (test)")
            steps.append("done")

        assert run_soon(ctx, work(0)) is None and steps == ["first", "done"] and not ctx.tasks
        steps.clear()
        task = run_soon(ctx, work(2))
        assert task is not None and steps == ["first"], "its first step only, now"
        await task
        assert steps == ["first", "done"]
        failing = run_soon(ctx, work(1, fails=True))
        assert failing is not None
        with pytest.raises(RuntimeError, match="second step"):
            await failing
        steps.clear()
        cancelled = run_soon(ctx, work(5))
        assert cancelled is not None
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert steps == ["first"], "cancelling the task cancels the coroutine"

    asyncio.run(main())
