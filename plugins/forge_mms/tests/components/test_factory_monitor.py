"""mms.factory_monitor end to end on the testing kit: DOWN timing through the check loop, forge.status,
malformed beats dead-lettered, a bare JSON beat from a plain client, the tables and retention."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from forge_core import dead_letters


def statuses(plant, factory):
    return [(e.payload["status"], e.payload["previous"]) for e in plant.sent(f"forge/status/{factory}",
                                                                             type="forge.status")]


@pytest.mark.parametrize("check_every", [1.0, 0.25, 0.3])
def test_down_comes_after_three_missed_beats_at_the_instant_it_falls_due(factory_plant, beats, check_every):
    """The leader wakes when a silence verdict falls due, not at its next check: DEGRADED just past
    degraded_after x interval (1.5 s), DOWN just past the timeout (3 s), whatever check_every."""
    plant = factory_plant({"check_every": check_every})
    plant.advance(0.5)  # beats at x.5, checks at whole seconds (at 1 s)
    beats(plant, 5, "f1")
    last = plant.sent(type="mms.factory_heartbeat")[-1].time
    down = plant.expect("forge.status", within=10, where=lambda e: e.payload["status"] == "DOWN")
    assert 3.0 < down.time - last <= 3.0 + 1e-5, "timeout 3 s, judged at its instant"
    degraded = next(e for e in plant.sent("forge/status/f1", type="forge.status") if e.payload["status"] == "DEGRADED")
    assert 1.5 < degraded.time - last <= 1.5 + 1e-5
    assert statuses(plant, "f1") == [("UP", None), ("DEGRADED", "UP"), ("DOWN", "DEGRADED")]
    assert plant.component("monitor").calculate_error_rate("f1", 30.0) == 0.0


def test_a_factory_first_heard_during_a_long_check_period_is_judged_at_its_instant(factory_plant, beats):
    """check_every longer than the DEGRADED rule (5 s against 1.5 s): a factory first heard while the
    leader sleeps toward its next check still gets DEGRADED and DOWN at their instants, not at that check."""
    plant = factory_plant({"check_every": 5.0})
    plant.advance(0.5)
    beats(plant, 1, "f1")  # one beat at 0.5 s, during the leader's first sleep (its check is at 5 s)
    last = plant.sent(type="mms.factory_heartbeat")[-1].time
    down = plant.expect("forge.status", within=10, where=lambda e: e.payload["status"] == "DOWN")
    assert 3.0 < down.time - last <= 3.0 + 1e-5
    degraded = next(e for e in plant.sent("forge/status/f1", type="forge.status") if e.payload["status"] == "DEGRADED")
    assert 1.5 < degraded.time - last <= 1.5 + 1e-5


def test_two_missed_beats_do_not_fail_the_factory_over(factory_plant, beats):
    plant = factory_plant()
    plant.advance(0.5)
    beats(plant, 5, "f1")
    plant.advance(1.9)  # the beats due 1 s and 2 s after the last are missed; the next is 2.9 s late
    beats(plant, 10, "f1")
    assert "DOWN" not in [s for s, _ in statuses(plant, "f1")]
    assert [e.payload["status"] for e in plant.sent(type="mms.status_report")] == ["UP", "DEGRADED", "UP"]


def test_malformed_beats_are_dead_lettered_and_nothing_else_happens(factory_plant):
    plant = factory_plant()
    plant.publish_raw("factory/f1/heartbeat", b"{not json")
    plant.publish_raw("factory/f1/heartbeat", {"factoryId": "f1", "timestamp": "yesterday", "metrics": {"errors": 0}})
    plant.publish_raw("factory/f1/heartbeat", {"factoryId": "f1", "timestamp": 1.0, "metrics": {"errors": -1}})
    plant.publish_raw("factory/f1/heartbeat", {"factoryId": "a+b", "timestamp": 1.0, "metrics": {"errors": 0}})
    plant.advance(2)
    reasons = [d.reason for d in plant.dead_letters]
    assert reasons.count(dead_letters.DECODE_ERROR) == 1 and reasons.count(dead_letters.INVALID) == 2
    refused = [d for d in plant.dead_letters if d.reason == dead_letters.REFUSED]
    assert len(refused) == 1 and "factoryId" in refused[0].detail and refused[0].component == "monitor"
    monitor = plant.component("monitor")
    assert monitor.report()["refused"] == 1 and monitor.report()["beats"] == 0
    assert plant.sent(type="forge.status") == [] and plant.sent(type="mms.status_report") == []


def test_a_bare_json_beat_from_a_plain_client_is_a_new_factory(factory_plant):
    plant = factory_plant()
    plant.publish_raw("factory/9/heartbeat", {"timestamp": 1.0, "metrics": {"cpu": 5, "memory": 5, "errors": 0}})
    plant.advance(1)
    assert statuses(plant, "9") == [("UP", None)]
    report = plant.last("mms.status_report").payload
    assert (report["factoryId"], report["status"]) == ("9", "UP")


def test_beats_status_and_events_are_recorded_and_old_beats_pruned(factory_plant, beats):
    plant = factory_plant({"retention": 10.0, "prune_every": 5.0, "flush_every": 1.0, "simulated_flush_every": None})
    beats(plant, 30, "f1", "f2")
    monitor = plant.component("monitor")
    with monitor.ctx.storage.connect() as conn:
        kept = conn.execute(sa.text("SELECT factory_id, MIN(received_at), COUNT(*) FROM heartbeats "
                                    "GROUP BY factory_id ORDER BY factory_id")).all()
        rows = conn.execute(sa.text("SELECT factory_id, status, reported_status FROM factory_status "
                                    "ORDER BY factory_id")).all()
        events = conn.execute(sa.text("SELECT factory_id, status, outcome FROM failover_events")).all()
    now = plant.clock.time()
    assert [k[0] for k in kept] == ["f1", "f2"] and all(now - 15.0 <= k[1] for k in kept), "pruned every 5 s"
    assert all(10 <= k[2] <= 16 for k in kept)
    assert [tuple(r) for r in rows] == [("f1", "UP", "UP"), ("f2", "UP", "UP")]
    assert sorted(tuple(e) for e in events) == [("f1", "UP", "accepted"), ("f2", "UP", "accepted")]
    assert monitor.report()["storage"]["beats_written"] == 60


def test_a_replaced_risk_strategy_is_used(factory_plant, beats):
    from forge_core import Settings, hookimpl

    from forge_mms.tactics.risk import Risk, RiskAssessment

    class Always:
        def assess(self, factory, beats, now):
            return RiskAssessment(Risk.MEDIUM, 0.0, None, f"always, {len(beats)} beats")

    class Strategy:
        @hookimpl
        def forge_register_tactics(self, registry):
            class NoSettings(Settings):
                pass

            registry.add("risk.always", lambda settings, services: Always(), settings=NoSettings)

    plant = factory_plant(tactics={"risk": {"use": "always"}}, plugins=[("strategy", Strategy())])
    beats(plant, 3, "f1")
    changed = plant.last("mms.risk_changed").payload
    assert (changed["risk"], changed["previous"], changed["reason"]) == ("MEDIUM", "LOW", "always, 1 beats")


def test_the_rules_assessment_is_reused_only_while_the_window_holds_the_same_beats(factory_plant, beats):
    """risk.rules judges the window's beats alone: a check that finds the same beats keeps the last
    assessment (3 of 4 checks at 0.25 s checks and 1 s beats); every check's assessment is what asking
    the strategy then would have given, through a rise of errors to HIGH.

    The strategy is asked when the check's assessment is a new object (risk.rules builds a new one on
    every call; a reused one is the same object): the strategy's class may be compiled (mypyc), where
    its ``assess`` cannot be patched on the instance, and a subclass spy would not be risk.rules."""
    plant = factory_plant({"check_every": 0.25})
    monitor = plant.component("monitor")
    rules = monitor.risk
    asked = []
    last = None
    checks = 0
    for second in range(40):
        beats.one(plant, "f1", errors=float(max(0, second - 20)))  # new errors every beat after 20 s
        for _ in range(4):
            plant.advance(0.25)
            checks += 1
            now = plant.clock.time()
            assessment = monitor.assessments["f1"]
            if assessment is not last:
                asked.append(now)
                last = assessment
            assert assessment == rules.assess("f1", monitor.history.window("f1", monitor.risk_window, now), now)
            assert rules.assess("f1", [], now) is not rules.assess("f1", [], now), "a new assessment a call"
    assert monitor.risks["f1"] == "HIGH"
    assert 35 <= len(asked) <= checks // 2, f"asked {len(asked)} times in {checks} checks"


def test_a_replaced_risk_strategy_is_asked_on_every_check(factory_plant, beats):
    from forge_core import Settings, hookimpl

    from forge_mms.tactics.risk import Risk, RiskAssessment

    asked = []

    class ByTime:  # may read the time: the monitor cannot know its answer is the same
        def assess(self, factory, beats, now):
            asked.append(now)
            return RiskAssessment(Risk.MEDIUM if now % 2 < 1 else Risk.LOW, 0.0, None, "by time")

    class Strategy:
        @hookimpl
        def forge_register_tactics(self, registry):
            class NoSettings(Settings):
                pass

            registry.add("risk.bytime", lambda settings, services: ByTime(), settings=NoSettings)

    plant = factory_plant({"check_every": 0.25}, tactics={"risk": {"use": "bytime"}}, plugins=[("s", Strategy())])
    beats(plant, 5, "f1")
    assert len(asked) >= 4 * 4, f"asked {len(asked)} times over 5 s of 0.25 s checks"
