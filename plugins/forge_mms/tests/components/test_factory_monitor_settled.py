"""The check's settled path (FactoryMonitor._settled): a check that finds no beat, no status change,
no risk held lower and no beat due to leave a risk window since the last full check skips its risk
loop. Over random beats (gaps, bursts, rising errors and latency, silences that go DOWN, a risk
raised and held lower) it gives, check by check, the statuses, risks, assessments and published
changes of running the loop on every check."""

from __future__ import annotations

import random

import pytest

PARAMS = {"check_every": 0.25, "risk_hold": 3.0}
TACTICS = {"risk": {"use": "rules", "window": 12.0, "high_error_rate": 0.2, "min_samples": 4,
                    "latency_slope": 5.0}}


def state(plant):
    m = plant.component("monitor")
    return (dict(m.faults.statuses()), dict(m.risks), dict(m.assessments), dict(m._lower_since),
            [(e.topic, e.payload) for e in plant.sent()])


@pytest.mark.parametrize("seed", range(8))
def test_settled_checks_judge_as_a_full_check_every_time(factory_plant, beats, seed):
    fast = factory_plant(PARAMS, tactics=TACTICS)
    full = factory_plant(PARAMS, tactics=TACTICS)
    full.component("monitor")._settled = lambda now: False  # the risk loop on every check
    monitor = fast.component("monitor")
    settled = 0
    original = monitor._settled

    def counting(now):
        nonlocal settled
        answer = original(now)
        settled += answer
        return answer

    monitor._settled = counting
    rng = random.Random(seed)
    factories = ("f1", "f2", "f3")
    errors = dict.fromkeys(factories, 0.0)
    silent_until = dict.fromkeys(factories, 0.0)
    for step in range(4 * 150):  # 150 s of 0.25 s steps
        now = fast.clock.time()
        for factory in factories:
            if now < silent_until[factory]:
                continue
            if rng.random() < 0.01:
                silent_until[factory] = now + rng.choice([2.0, 5.0])  # late beats, or DOWN
                continue
            if rng.random() < 0.3:
                if rng.random() < (0.3 if 40 < step / 4 < 70 else 0.02):
                    errors[factory] += 1
                latency = 10.0 + (step / 4 if factory == "f2" else rng.random())
                for plant in (fast, full):
                    beats.one(plant, factory, errors=errors[factory], latencyMs=latency)
        for plant in (fast, full):
            plant.advance(0.25)
        assert state(fast) == state(full), f"seed {seed}, step {step}"
    risks_seen = {e.payload["risk"] for e in fast.sent(type="mms.risk_changed")}
    assert "HIGH" in risks_seen
    assert settled > 50, f"the settled path ran {settled} times"
