"""``baseline``: deviation from a rolling baseline, as an **EWMA z-score** (energy consumption patterns).

The baseline is an exponentially weighted moving mean and variance (weight ``alpha``; incremental form,
Finch 2009: ``d = x - mean; mean += alpha*d; var = (1-alpha)*(var + alpha*d*d)``), started from the plain
mean and sample variance of the first ``warmup`` readings (an EWMA variance started at 0 would be far too
small for a while and make ordinary noise look anomalous). A reading's
z = (x - mean) / max(std, min_std), with mean and std from *before* the reading. The first ``warmup``
readings are only learned. A reading beyond ``z_limit`` is not learned, so an anomaly does not drag the
baseline after it; ``relearn_after`` such readings in a row restart the baseline from the reading (a lasting
new level). What it catches: spikes, steps and bursts faster than its memory (~1/alpha readings); a drift
slower than that is learned as the new normal (judge absolute limits with a threshold rule).
"""

from __future__ import annotations

import math
from typing import Any

from forge_mms.anomaly.readings import Reading
from forge_mms.anomaly.verdicts import Severity, Verdict, Window, judge_levels
from forge_mms.settings import BaselineRuleSettings

__all__ = ["BaselineRule"]


class _BaselineState:
    __slots__ = ("beyond", "m2", "mean", "n", "var")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.var = 0.0
        self.m2 = 0.0  # sum of squared deviations during the warm-up (Welford)
        self.beyond = 0  # readings in a row beyond z_limit (not learned)


class BaselineRule:
    def __init__(self, settings: BaselineRuleSettings) -> None:
        self.settings = settings
        # enough past readings that what is older weighs under 1 % (and the warm-up is passed)
        self.history = max(settings.warmup, math.ceil(math.log(100) / settings.alpha))
        # what each reading reads, as plain attributes: a (pydantic) settings field costs ~370 instructions more
        self.warmup, self.alpha, self.min_std = settings.warmup, settings.alpha, settings.min_std
        self.direction, self.z_limit, self.relearn_after = settings.direction, settings.z_limit, settings.relearn_after
        self.levels: list[tuple[Severity, float]] = [(settings.severity, settings.z_limit)]

    def fresh(self) -> Any:
        return _BaselineState()

    def _learn(self, state: _BaselineState, x: float) -> None:
        state.n += 1
        d = x - state.mean
        if state.n <= self.warmup:  # the plain mean and sample variance first: an unbiased start
            state.mean += d / state.n
            state.m2 += d * (x - state.mean)
            state.var = state.m2 / (state.n - 1) if state.n > 1 else 0.0
            return
        alpha = self.alpha
        state.mean += alpha * d
        state.var = (1 - alpha) * (state.var + alpha * d * d)

    def judge(self, state: _BaselineState, reading: Reading, held: Severity | None) -> Verdict | None:
        return self._judge(state, reading, held, False)

    def _judge(self, state: _BaselineState, reading: Reading, held: Severity | None = None,
               quiet: bool = True) -> Verdict | None:
        x = reading.value
        if state.n < self.warmup:
            self._learn(state, x)
            state.beyond = 0
            return None
        std = max(math.sqrt(state.var), self.min_std)
        z = (x - state.mean) / std
        direction = self.direction
        measured = abs(z) if direction == "both" else z if direction == "above" else -z
        mean = state.mean
        beyond = measured > self.z_limit  # past the one level: not learned, and the quiet path's condition
        if beyond:
            state.beyond += 1
            if self.relearn_after is not None and state.beyond >= self.relearn_after:
                state.n, state.beyond, state.mean, state.m2 = 0, 0, 0.0, 0.0  # a lasting new level: afresh
                self._learn(state, x)
        else:
            # _learn past the warm-up (n >= warmup here, the branch above took the warm-up's readings), inline: the
            # same float operations without a second Python call per reading
            state.beyond = 0
            state.n += 1
            d = x - mean
            alpha = self.alpha
            state.mean = mean + alpha * d
            state.var = (1 - alpha) * (state.var + alpha * d * d)
        if quiet and not beyond:  # judge_quiet: no condition, no judge_levels call
            return None
        severity, level = judge_levels(measured, self.levels, above=True, hysteresis=self.settings.hysteresis, held=held)
        if quiet and severity is None:  # judge_quiet: no condition, nothing to build
            return None
        reason = (f"z {z:+.3g} (value {x:g}, baseline {mean:.4g} ± {std:.3g})"
                  + (f" beyond {level:g}" if severity is not None else ""))
        return Verdict(severity, z, level,
                       Window(reading.seq, reading.seq, 0.0), reason)

    #: the quiet path (QuietRule) is _judge with its defaults, nothing held: one call a reading, not two
    judge_quiet = _judge
