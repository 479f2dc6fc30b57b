from __future__ import annotations

import random

import pytest

from forge_core.tactics.detectors import (
    FailureDetector,
    FixedTimeoutDetector,
    PhiAccrualDetector,
    expected_detection_time,
    phi,
)


def feed(detector: FailureDetector, interval: float, n: int, jitter: float = 0.0, seed: int = 1) -> float:
    rng = random.Random(seed)
    t = 0.0
    detector.heartbeat("m1", t)
    for _ in range(n):
        t += interval * (1 + rng.uniform(-jitter, jitter))
        detector.heartbeat("m1", t)
    return t


def test_fixed_timeout_goes_down_after_timeout() -> None:
    d = FixedTimeoutDetector(3.0)
    last = feed(d, 1.0, 10)
    assert d.is_available("m1", last + 2.99)
    assert not d.is_available("m1", last + 3.01)
    assert d.suspicion("m1", last + 1.5) == pytest.approx(0.5)
    assert d.is_available("unknown", 1e9), "an unknown source is not suspected"


def test_fixed_timeout_rejects_bad_timeout() -> None:
    with pytest.raises(ValueError, match="timeout must be > 0"):
        FixedTimeoutDetector(0)


def test_phi_rises_with_silence_and_crosses_threshold() -> None:
    d = PhiAccrualDetector()
    last = feed(d, 1.0, 100, jitter=0.1)
    values = [d.suspicion("m1", last + x) for x in (0.5, 1.0, 1.3, 1.6, 2.0)]
    assert values == sorted(values) and values[0] < 0.1
    assert d.is_available("m1", last + 1.3)
    assert not d.is_available("m1", last + 1.7)


def test_phi_matches_akka_formula() -> None:
    # Akka's PhiAccrualFailureDetectorSpec: phi(0, 0, 10) ~ 0.3, large diffs are large.
    assert phi(0.0, 0.0, 10.0) == pytest.approx(0.30103, abs=1e-3)
    assert phi(100, 10, 10) > 14
    assert phi(5, 10, 10) < phi(10, 10, 10) < phi(15, 10, 10)


def test_phi_acceptable_pause_delays_verdict() -> None:
    plain, tolerant = PhiAccrualDetector(), PhiAccrualDetector(acceptable_heartbeat_pause=3.0)
    assert expected_detection_time(tolerant, 1.0) == pytest.approx(expected_detection_time(plain, 1.0) + 3.0, abs=0.01)


def test_phi_does_not_learn_the_gap_that_ended_an_outage() -> None:
    d = PhiAccrualDetector()
    last = feed(d, 1.0, 50)
    d.heartbeat("m1", last + 60.0)  # back after a minute's outage
    assert d.is_available("m1", last + 61.0)
    assert not d.is_available("m1", last + 62.0), "the 60 s gap must not have widened the distribution"


def test_forget_and_duplicate_beats() -> None:
    d = PhiAccrualDetector()
    feed(d, 1.0, 5)
    d.heartbeat("m1", 1.0)  # reordered: ignored
    d.forget("m1")
    assert d.suspicion("m1", 1e6) == 0.0


def test_expected_detection_time_is_leaves_real_sources_alone() -> None:
    d = PhiAccrualDetector()
    last = feed(d, 1.0, 20)
    t = expected_detection_time(d, 1.0, 0.1)
    assert 1.2 < t < 2.5
    assert d.last_heartbeat("m1") == last
    assert expected_detection_time(FixedTimeoutDetector(3.0), 1.0) == pytest.approx(3.0, abs=1e-6)


def test_phi_first_estimate_must_match_slow_sources() -> None:
    # Akka behaviour, kept on purpose and documented: intervals judged "unavailable" are never
    # learned, so a 5 s source on a 1 s first estimate is declared dead ~2.3 s after each beat.
    assert expected_detection_time(PhiAccrualDetector(), 5.0) < 5.0
    assert expected_detection_time(PhiAccrualDetector(first_heartbeat_estimate=5.0), 5.0) > 5.0


def test_phi_validates_settings() -> None:
    with pytest.raises(ValueError, match=r"threshold must be > 0.*min_std_deviation"):
        PhiAccrualDetector(threshold=0, min_std_deviation=0)
