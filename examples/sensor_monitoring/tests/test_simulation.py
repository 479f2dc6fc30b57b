"""The sensor model (sensor_monitoring.simulation): with no anomaly running, ``read`` and ``interval_factor``
skip ``active(now)`` (it would change nothing). The readings, labels, burst factors and episode ends of a run
with every anomaly kind, back to back and apart, equal those of the model asking ``active`` every time. A
reading's rounding by floats gives the double ``round(value, decimals)`` gives, next to ties too."""

from __future__ import annotations

import math
import random

import pytest
from sensor_monitoring.settings import DEFAULT_SIGNALS
from sensor_monitoring.simulation import Episode, SensorModel


class AskingEveryTime(SensorModel):
    """The model as it was: ``active(now)`` asked on every read and every interval factor. Asking it first
    and then the model's own path is the same thing, since ``active`` gives the same answer twice at one
    ``now`` (it only ends an episode whose time has run)."""

    def interval_factor(self, now: float) -> float:
        self.active(now)
        return super().interval_factor(now)

    def read(self, now: float) -> tuple[float, str | None]:
        self.active(now)
        return super().read(now)


def trace(model: SensorModel, seed: int) -> list[tuple[float, str | None, float, float, Episode | None]]:
    draw = random.Random(seed)
    now, out = 0.0, []
    while now < 3_000.0:
        if model.episode is None and draw.random() < 0.01:  # an anomaly now and then, some back to back
            model.inject(draw.choice(["spike", "drift", "stuck", "burst"]), now, draw.uniform(5.0, 60.0), "test")
        value, label = model.read(now)
        factor = model.interval_factor(now)
        out.append((value, label, factor, model.quiet_since, model.episode))
        now += 1.0 / factor
    return out


@pytest.mark.parametrize("kind", ["temperature", "vibration", "energy"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_skipping_active_without_an_episode_changes_no_reading_factor_or_episode_end(kind, seed):
    signal = DEFAULT_SIGNALS[kind]
    fast = trace(SensorModel("s-1", kind, "line-1", signal, random.Random(seed)), seed)
    slow = trace(AskingEveryTime("s-1", kind, "line-1", signal, random.Random(seed)), seed)
    assert fast == slow
    assert {label for _v, label, *_ in fast} >= {None, "spike", "drift", "stuck", "burst"}
    assert any(factor > 1.0 for _v, _l, factor, *_ in fast)  # bursts sample faster, and end
    assert fast[-1][3] > 0.0  # an episode ended by active(): quiet_since moved


@pytest.mark.parametrize("decimals", range(7))
def test_a_reading_is_rounded_to_the_double_round_gives(decimals):
    signal = DEFAULT_SIGNALS["temperature"].model_copy(update={"minimum": None, "decimals": decimals})
    model = SensorModel("temp-1", "temperature", "line-1", signal, random.Random(1))
    draw = random.Random(decimals)
    values = [0.0, -0.0, 1e-300, 5e-324, -1.5, 2.0 ** 50 / 10 ** decimals, 1e15, 1e300, math.inf, -math.inf]
    for _ in range(20_000):
        values.append(draw.uniform(-50.0, 250.0))  # what the plant's sensors read
        values.append(draw.random() * 10 ** draw.uniform(-9, 12))
        half = (draw.randrange(0, 10 ** 9) + 0.5) / 10 ** decimals  # next to a tie at the next digit
        values += [half + u * math.ulp(half) for u in range(-3, 4)]
    for value in values:
        assert repr(model._finish(value)) == repr(round(value, decimals)), (value, decimals)
    assert math.isnan(model._finish(math.nan))
