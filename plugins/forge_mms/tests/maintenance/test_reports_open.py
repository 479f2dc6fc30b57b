"""StatusReports.tick kicks only the factories whose wanted status is not the accepted one (kept as
a set as statuses are wanted and accepted): the same factories, in the same order, as a tick that
asks every wanted factory, over random sequences of wants, answers and takeovers."""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace
from typing import Any

import pytest

from forge_mms.maintenance.reports import StatusReports
from forge_mms.tactics.status_reporter import ReportResult

FACTORIES = ("f1", "f2", "f3", "f4", "f5")
STATUSES = ("UP", "DEGRADED", "DOWN")


class Ctx:
    """What StatusReports uses of a component context: spawned reports are recorded, not run."""

    name = "monitor"

    def __init__(self) -> None:
        self.clock = SimpleNamespace(monotonic=lambda: 0.0)
        self.spawned: list[str] = []

    def spawn(self, coro: Any, name: str) -> None:
        coro.close()
        self.spawned.append(name.removeprefix("report:"))

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        return None


class Reporter:
    def __init__(self) -> None:
        self.accept = True

    async def report(self, factory: str, status: str, reason: str, *, epoch: int, lease: str) -> ReportResult:
        return ReportResult(self.accept)


class Retry:
    give_up_on: tuple[type[BaseException], ...] = ()

    async def acall(self, fn: Any) -> Any:
        return await fn()


async def nothing(*args: Any) -> None:
    return None


@pytest.mark.parametrize("seed", range(8))
def test_tick_kicks_what_asking_every_wanted_factory_kicks(seed):
    rnd = random.Random(seed)
    ctx, reporter = Ctx(), Reporter()
    elector = SimpleNamespace(is_leader=True, fence=lambda: 1, name="mms")
    reports = StatusReports(ctx, reporter, Retry(), elector=lambda: elector, topic="mms/failover/{factory}",  # type: ignore[arg-type]
                            resend_after=0.0, record=nothing, accepted=nothing)
    kicked_any = 0
    for _ in range(400):
        op = rnd.random()
        factory = rnd.choice(FACTORIES)
        if op < 0.4:
            reports.want(factory, rnd.choice(STATUSES), "test")
        elif op < 0.7 and factory in reports.wanted:  # an answer (accepted or refused) to the wanted status
            reporter.accept = rnd.random() < 0.8
            asyncio.run(reports._send(factory, reports.wanted[factory]))
        elif op < 0.8:  # a takeover reads what the PMS accepted, whole
            reports.accepted = {f: rnd.choice(STATUSES) for f in rnd.sample(FACTORIES, rnd.randint(0, 5))}
        reports._in_flight.clear()
        ctx.spawned.clear()
        reports.tick()
        expected = [f for f, r in reports.wanted.items() if reports.accepted.get(f) != r.status]
        assert ctx.spawned == expected
        assert list(reports.pending()) == expected
        kicked_any += bool(expected)
    assert 0 < kicked_any < 400  # both kinds of tick happened
