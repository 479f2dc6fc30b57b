"""forge_core.runtime.transports: which transports a process connects, and connecting through the
retry tactic on the plant's clock."""

from __future__ import annotations

import asyncio

import pytest

from forge_core.errors import ForgeError, TransportNotReady
from forge_core.plant import load_plant
from forge_core.runtime.transports import connect_with_retry, transports_needed


class _StepClock:
    """Records the sleeps asked of it and jumps time by them (no waiting)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class _LateBroker:
    name = "bus"

    def __init__(self, ready_after: int) -> None:
        self.ready_after = ready_after
        self.attempts = 0

    async def connect(self) -> None:
        self.attempts += 1
        if self.attempts <= self.ready_after:
            raise TransportNotReady(f"broker down (attempt {self.attempts})")


def test_connect_retries_a_transport_that_is_not_ready_with_the_retry_backoff() -> None:
    clock = _StepClock()
    broker = _LateBroker(ready_after=5)
    asyncio.run(connect_with_retry(broker, clock, 6))  # type: ignore[arg-type]
    assert broker.attempts == 6
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0], "doubling from 0.5 s, on the given clock"

    clock.sleeps.clear()
    never = _LateBroker(ready_after=99)
    with pytest.raises(ForgeError, match=r"transport 'bus' not ready after 6 attempts: broker down \(attempt 6\)"):
        asyncio.run(connect_with_retry(never, clock, 6))  # type: ignore[arg-type]
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_a_process_needs_the_default_its_components_and_both_ends_of_each_route(plant_dir, basic_manifest) -> None:
    manifest = basic_manifest.replace(
        "  bus: {type: memory}",
        "  bus: {type: memory}\n  side: {type: memory}\n  far: {type: memory}\n  edge: {type: memory}\n"
        "  unused: {type: memory}",
    ).replace(
        "m2: {type: test.machine, params: {interval: 2.0}, group: line2}",
        "m2: {type: test.machine, params: {interval: 2.0}, group: line2, transport: side}",
    ) + "routes:\n  - {from: edge, to: far, topics: ['#']}\n"
    plugins, loaded = load_plant(plant_dir(manifest))
    assert transports_needed(loaded, plugins, ["m1"]) == {"bus", "edge", "far"}
    assert transports_needed(loaded, plugins, ["m2"]) == {"bus", "side", "edge", "far"}
    assert "unused" not in transports_needed(loaded, plugins, ["m1", "m2"])
