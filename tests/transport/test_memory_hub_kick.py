"""The hub's idle wake-up (``MemoryHub._kick``): a burst to an idle subscription whose callback has a
``run`` is delivered by a queued callback instead of the task's waiter (on the virtual loop a handle
made once, on any other loop ``call_soon``). The same deliveries, in the same order among the other
tasks, as the task alone would make on a stock loop."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from forge_core.clock import VirtualClock
from forge_core.messages.envelope import Envelope
from forge_core.transport import memory_hub
from forge_core.transport.base import QueueEntry
from forge_core.transport.memory_hub import MemoryHub, _Sub

T = TypeVar("T")


class Redeliver(Exception):
    pass


def _env(n: int) -> Envelope:
    return Envelope(type="t", payload={}, source="s", id=str(n))


def _callback(log: list[str], special: dict[str, Callable[[str], Any]]) -> Any:
    """A callback with a ``run`` (transport.base.DirectRun): ``special`` ids end the run with an
    outcome (an awaitable or an exception) as the bus's run does for such handlers."""

    async def callback(topic: str, envelope: Any) -> None:
        log.append(f"cb:{envelope.id}")

    def run(queue: deque[QueueEntry]) -> tuple[int, QueueEntry | None, Any]:
        done = 0
        while queue:
            entry = queue.popleft()
            envelope = entry if isinstance(entry, Envelope) else entry[1]
            make = special.pop(str(envelope.id), None)
            if make is not None:
                return done, entry, make(str(envelope.id))
            log.append(str(envelope.id))
            done += 1
        return done, None, None

    callback.run = run  # type: ignore[attr-defined]
    return callback


def _scenario(log: list[str], special: dict[str, Callable[[str], Any]]) -> Coroutine[Any, Any, dict[str, int]]:
    async def body() -> dict[str, int]:
        hub = MemoryHub()
        hub.add(_Sub(hub, "a/#", _callback(log, special), None, "run"))

        async def plain(topic: str, envelope: Any) -> None:
            log.append(f"plain:{envelope.id}")

        hub.add(_Sub(hub, "a/#", plain, None, "plain"))

        async def publisher(name: str, first: int) -> None:
            for n in range(first, first + 6):
                hub.put("a/b", _env(n))
                log.append(f"{name}:{n}")
                if n % 2:
                    await asyncio.sleep(0)

        await asyncio.gather(publisher("p", 0), publisher("q", 100))
        await hub.drained()
        return hub.stats

    return body()


def _slow(log: list[str]) -> Callable[[str], Any]:
    async def finish(ident: str) -> None:
        log.append(f"finish:{ident}")
        await asyncio.sleep(0)
        log.append(f"finished:{ident}")

    def make(ident: str) -> Any:
        return finish(ident)

    return make


def _both(special: Callable[[list[str]], dict[str, Callable[[str], Any]]],
          kicked: str = "virtual") -> tuple[list[str], list[str]]:
    """The scenario's log on a stock loop with the task delivering every burst (no kick), and with
    kicks on a VirtualClock (``kicked="virtual"``) or on a stock loop (``kicked="stock"``)."""
    on_task: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memory_hub, "_soon_caller", lambda loop, callback, context: None)
        stats_task = asyncio.run(_scenario(on_task, special(on_task)))
    on_kicked: list[str] = []
    if kicked == "stock":
        stats_kicked = asyncio.run(_scenario(on_kicked, special(on_kicked)))
    else:
        clock = VirtualClock()
        try:
            stats_kicked = clock.run(_scenario(on_kicked, special(on_kicked)))
        finally:
            clock.close()
    assert stats_kicked == stats_task == {"published": 12, "delivered": 24, "redelivered": 0,
                                          "undeliverable": 0}
    return on_task, on_kicked


@pytest.mark.parametrize("kicked", ["virtual", "stock"])
def test_a_burst_delivered_without_the_task_keeps_the_stock_loops_order(kicked: str):
    on_task, on_kicked = _both(lambda log: {}, kicked)
    assert on_kicked == on_task


@pytest.mark.parametrize("kicked", ["virtual", "stock"])
def test_an_awaitable_outcome_is_finished_by_the_task_before_the_next_message(kicked: str):
    """Handed over, it starts one loop iteration later than the task would start it (the task's next
    step), so only the subscription's own order is the task's."""
    on_task, on_kicked = _both(lambda log: {"3": _slow(log), "102": _slow(log)}, kicked)

    def own(log: list[str]) -> list[str]:
        return [e for e in log if ":" not in e or e.startswith("finish")]

    assert own(on_kicked) == own(on_task)
    assert own(on_kicked).index("finished:3") < own(on_kicked).index("4")
    assert sorted(on_kicked) == sorted(on_task)


def _run_on(loop: str, main: Coroutine[Any, Any, T]) -> T:
    """``main`` run on a stock loop, a VirtualClock, or a VirtualClock in debug mode (kicks by call_soon)."""
    if loop == "stock":
        return asyncio.run(main)
    clock = VirtualClock()
    clock.loop.set_debug(loop == "virtual-debug")
    try:
        return clock.run(main)
    finally:
        clock.close()


@pytest.mark.parametrize("loop", ["virtual", "virtual-debug", "stock"])
def test_a_redelivery_asked_for_in_a_kicked_burst_comes_again_and_an_idle_subscription_is_kicked(loop: str):
    async def body() -> tuple[list[str], dict[str, int], bool]:
        hub = MemoryHub()
        log: list[str] = []
        asked = {"1": lambda ident: Redeliver(ident)}
        sub = _Sub(hub, "a/#", _callback(log, asked), None, "run")
        hub.add(sub)
        hub.put("a/b", _env(0))
        await hub.drained()  # the task's first burst; idle since
        kicked = sub.kick is not None
        hub.put("a/b", _env(1))
        hub.put("a/b", _env(2))
        await hub.drained()
        return log, hub.stats, kicked

    log, stats, kicked = _run_on(loop, body())
    assert kicked
    assert log == ["0", "1", "2"]
    assert stats == {"published": 3, "delivered": 3, "redelivered": 1, "undeliverable": 0}


@pytest.mark.parametrize("loop", ["virtual", "virtual-debug", "stock"])
def test_a_subscription_removed_while_its_kick_is_queued_gets_nothing_more(loop: str):
    async def body() -> tuple[list[str], int]:
        hub = MemoryHub()
        log: list[str] = []
        sub = _Sub(hub, "a/#", _callback(log, {}), None, "run")
        hub.add(sub)
        hub.put("a/b", _env(0))
        await hub.drained()
        hub.put("a/b", _env(1))  # queues the kick
        task = hub.remove(sub)
        assert task is not None
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
        return log, hub.pending()

    assert _run_on(loop, body()) == (["0"], 0)
