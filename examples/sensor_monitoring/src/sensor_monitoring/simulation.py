"""The signal of one simulated sensor: its normal reading and the anomalies injected into it.

Pure and clock-free: the caller passes the time, so the model is the same under the real and the
virtual clock, and a seeded ``random.Random`` gives the same readings for the same seed.

Normal reading: ``mean + wander·sin(2π·t/period + phase) + e(t)``, clipped at ``minimum`` and rounded
to ``decimals``; ``e`` is Ornstein-Uhlenbeck noise (standard deviation ``noise``, correlation time
``noise_tau``), so a sensor sampled ten times as often (``scale``) reads the same process, not ten
times as many independent jumps (a rate-of-change rule would see those as anomalies). Anomalies, each for its duration:

* **spike** — ``+spike`` on every reading (a sudden step: an overheating bearing, a jammed drive);
* **drift** — ``+drift·(elapsed/duration)``: a ramp from 0 to ``drift`` (a failing cooler, wear);
* **stuck** — the last normal value repeated exactly (a frozen transmitter);
* **burst** — white noise of ``noise·burst_noise`` on every reading, ``burst_rate`` times as often
  (chatter, impacts).

Each reading made during an anomaly carries its name as ground truth (``anomaly``), never used by
the processors, only by the plant's checks and the drills.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sensor_monitoring.settings import Signal


@dataclass
class Episode:
    """One injected anomaly on one sensor: from ``started`` until ``until`` (clock seconds)."""

    anomaly: str
    started: float
    until: float
    source: str  # "schedule" | "random" | "command"
    frozen: float | None = None  # stuck: the value repeated

    @property
    def duration(self) -> float:
        return self.until - self.started


class SensorModel:
    """What sensor ``sensor_id`` reads at a time ``t`` (seconds on the plant's monotonic clock)."""

    def __init__(self, sensor_id: str, kind: str, location: str, signal: Signal, rng: random.Random,
                 burst_rate: float = 10.0) -> None:
        self.sensor_id, self.kind, self.location = sensor_id, kind, location
        self.signal = signal
        self.rng = rng
        self.burst_rate = burst_rate
        self.phase = rng.uniform(0.0, 2 * math.pi)
        self.noise = rng.gauss(0.0, signal.noise)  # the Ornstein-Uhlenbeck state, stationary from the start
        self.noise_at: float | None = None
        self._step, self._keep, self._spread = math.nan, 0.0, 0.0  # the last OU step's dt and its two factors
        self.episode: Episode | None = None
        self._scale = float(10 ** signal.decimals)  # exact (decimals <= 6): _finish's rounding divides by it
        # what each reading reads, as plain attributes: a field of the (pydantic) Signal costs ~400 instructions more
        self._mean, self._wander, self._period = signal.mean, signal.wander, signal.period
        self._minimum = signal.minimum
        self.last_normal: float | None = None
        #: when the last anomaly ended (clock seconds): random ones wait for a quiet period after it
        self.quiet_since: float = 0.0

    # -- anomalies ---------------------------------------------------------------------------
    def inject(self, anomaly: str, now: float, duration: float, source: str) -> Episode:
        """Start ``anomaly`` now for ``duration`` seconds; one already running ends here."""
        self.episode = Episode(anomaly, now, now + duration, source)
        if anomaly == "stuck":
            self.episode.frozen = self.last_normal if self.last_normal is not None else self._finish(self._normal(now))
        return self.episode

    def clear(self, now: float) -> None:
        """End the running anomaly, if any."""
        if self.episode is not None:
            self.episode = None
            self.quiet_since = now

    def active(self, now: float) -> Episode | None:
        """The anomaly running at ``now`` (one that has run its time ends here)."""
        episode = self.episode
        if episode is not None and now >= episode.until:
            self.episode = None
            self.quiet_since = episode.until
            return None
        return episode

    def interval_factor(self, now: float) -> float:
        """Readings come this many times as often now (a burst)."""
        if self.episode is None:  # active(now) would change nothing and say None: no call per sample
            return 1.0
        episode = self.active(now)
        return self.burst_rate if episode is not None and episode.anomaly == "burst" else 1.0

    # -- readings ----------------------------------------------------------------------------
    def _normal(self, now: float) -> float:
        if self.noise_at is not None and now > self.noise_at:  # exact OU step over now - noise_at
            dt = now - self.noise_at
            if dt != self._step:  # the step's factors, kept: a sensor's steps are nearly all its interval
                s = self.signal
                keep = math.exp(-dt / s.noise_tau)
                self._step, self._keep, self._spread = dt, keep, s.noise * math.sqrt(1.0 - keep * keep)
            self.noise = self.noise * self._keep + self.rng.gauss(0.0, self._spread)
        self.noise_at = now
        wander = self._wander
        wave = wander * math.sin(2 * math.pi * now / self._period + self.phase) if wander else 0.0
        return self._mean + wave + self.noise

    def read(self, now: float) -> tuple[float, str | None]:
        """(value, anomaly label or None) of a reading made at ``now``."""
        s = self.signal
        episode = self.episode
        if episode is not None:  # active(now) only when one runs: with none it changes nothing
            episode = self.active(now)
        if episode is None:
            value = self._finish(self._normal(now))
            self.last_normal = value
            return value, None
        if episode.anomaly == "stuck":
            assert episode.frozen is not None
            return episode.frozen, "stuck"
        if episode.anomaly == "spike":
            value = self._normal(now) + s.spike
        elif episode.anomaly == "drift":
            progress = min(1.0, max(0.0, (now - episode.started) / max(episode.duration, 1e-9)))
            value = self._normal(now) + s.drift * progress
        else:  # burst
            value = self._normal(now) + self.rng.gauss(0.0, s.noise * s.burst_noise)
        return self._finish(value), episode.anomaly

    def _finish(self, value: float) -> float:
        minimum = self._minimum
        if minimum is not None and value < minimum:
            value = minimum + abs(value - minimum) if self.kind == "vibration" else minimum
        # round(value, decimals) (a correctly rounded decimal conversion there and back, per reading) by three
        # float operations when that is provably the same double, as forge_core's trace rounds its times:
        # ``round`` gives the double nearest N / 10**d, N the integer nearest value * 10**d exactly (ties to
        # even). Below 2**32 the float product is off by at most 2**-22 (half its ulp); adding and taking away
        # 1.5 * 2**52 rounds it to an integer (ties to even); less than 0.5 - 2**-20 from the product, that
        # integer is N (no tie possible), and N / 10**d is one correctly rounded division of two exact floats.
        # Otherwise (a product within 2**-20 of a half, about one reading in a million, or one not below 2**32)
        # ``round``. (A bound of 0.375, the one for products up to 2**50, sent a quarter of the readings there.)
        scale = self._scale
        scaled = value * scale
        if 0.0 < scaled < _EXACT_BELOW:
            whole = (scaled + _TO_INTEGER) - _TO_INTEGER
            if -_NOT_NEAR_HALF < scaled - whole < _NOT_NEAR_HALF:
                return whole / scale
        return round(value, self.signal.decimals)


#: 1.5 * 2**52: a float in (0, 2**51) plus this, less this, is the nearest integer (ties to even)
_TO_INTEGER = 6755399441055744.0
#: where ``SensorModel._finish`` may round by floats (see there): a product below it is off by 2**-22 at most
_EXACT_BELOW = 2.0 ** 32
#: how far from its nearest integer such a product may be for that integer to be the exact product's nearest
_NOT_NEAR_HALF = 0.5 - 2.0 ** -20
