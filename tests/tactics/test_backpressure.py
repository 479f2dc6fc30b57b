from __future__ import annotations

import asyncio

import pytest

from forge_core.clock import VirtualClock
from forge_core.tactics.backpressure import BackpressureController


def test_hysteresis_with_settling(vclock: VirtualClock) -> None:
    changes: list[tuple[float, float, int]] = []
    bp = BackpressureController(clock=vclock, on_change=lambda *c: changes.append(c))
    seen: list[tuple[float, float]] = []

    async def main() -> None:
        for depth, hold in [(900, 1), (1001, 1), (700, 3), (499, 3), (600, 1), (400, 4.9), (400, 0.5)]:
            steps = round(hold / 0.1)
            for _ in range(steps):
                seen.append((vclock.elapsed, bp.update(depth)))
                await asyncio.sleep(0.1)

    vclock.run(main())
    assert changes == [(0.25, 2.0, 1001), (2.0, 0.25, 400)]
    back = next(t for t, iv in seen if t > 2 and iv == 0.25)
    assert back == pytest.approx(9.0 + 5.0, abs=0.1 + 1e-6)  # below 500 since 9.0 s, 5 s settle
    assert bp.switches == 2 and not bp.throttled


def test_exactly_high_does_not_throttle(vclock: VirtualClock) -> None:
    bp = BackpressureController(clock=vclock)
    assert bp.update(1000) == 0.25 and bp.update(1001) == 2.0


def test_low_must_be_below_high() -> None:
    with pytest.raises(ValueError, match=r"low \(1000\) must be below high \(500\)"):
        BackpressureController(high=500, low=1000)
