"""Failover: DOWN reported by the leader only, with its epoch; a successor takes over; a stale epoch is
refused by the PMS; a deposed MMS stops calling; the preemptive drain on HIGH risk."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from forge_core.tactics import NotLeader


def reports(plant, status=None):
    return [e.payload for e in plant.sent(type="mms.status_report")
            if status is None or e.payload["status"] == status]


def leader(plant, names=("monitor-0", "monitor-1")):
    leading = [n for n in names if plant.component(n).leading]
    assert len(leading) == 1, leading
    return leading[0]


def test_down_is_reported_once_by_the_leader_with_its_epoch(factory_plant, beats):
    plant = factory_plant(replicas=2)
    beats(plant, 5, "f1", "f2")
    first = leader(plant)
    beats(plant, 6, "f2")  # f1 stops
    down = reports(plant, "DOWN")
    assert [(r["factoryId"], r["epoch"], r["lease"]) for r in down] == [("f1", 1, "mms")]
    assert plant.sent(type="mms.status_report")[-1].source == first
    event = plant.last("mms.failover_event").payload
    assert event["outcome"] == "accepted" and event["status"] == "DOWN"
    assert len(plant.sent(type="forge.status", source=first)) == len(plant.sent(type="forge.status"))
    assert plant.component(first).failover.failovers == 1


def spy_on_writes(monitor):
    """What the monitor does, in order: ("report", status) when it calls the PMS, ("row", status,
    with the accepted status?) when it writes a factory_status row."""
    seen = []
    save, report = monitor.store.save_status, monitor.reporter.report

    async def saving(factory, values, event=None):
        seen.append(("row", values["status"], "reported_status" in values))
        await save(factory, values, event=event)

    async def reporting(factory, status, reason, **fence):
        seen.append(("report", status))
        return await report(factory, status, reason, **fence)

    monitor.store.save_status, monitor.reporter.report = saving, reporting
    return seen


def test_the_down_report_does_not_wait_for_the_status_row(factory_plant, beats):
    """The PMS's reassignment starts at the report: the row (a write through the store's worker thread
    under a real clock) follows the PMS's answer, with the status it accepted."""
    plant = factory_plant()
    beats(plant, 5, "f1", "f2")
    seen = spy_on_writes(plant.component("monitor"))
    beats(plant, 6, "f2")  # f1 stops
    down = [i for i, s in enumerate(seen) if s[:2] in (("report", "DOWN"), ("row", "DOWN"))]
    assert [seen[i] for i in down] == [("report", "DOWN"), ("row", "DOWN", True)], seen


def test_a_down_report_that_gets_no_answer_still_writes_the_row(factory_plant, beats):
    plant = factory_plant(pms={"silent_first": 100})
    beats(plant, 5, "f1", "f2")
    seen = spy_on_writes(plant.component("monitor"))
    beats(plant, 12, "f2")  # f1 stops; every report times out, the retries are spent
    assert ("report", "DOWN") in seen and ("row", "DOWN", False) in seen, seen
    assert ("row", "DOWN", True) not in seen, "nothing was accepted"
    with plant.component("monitor").ctx.storage.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM factory_status WHERE factory_id = 'f1'")).scalar()
    assert status == "DOWN"


def test_a_successor_takes_over_and_the_pms_refuses_the_old_epoch(factory_plant, beats):
    plant = factory_plant(replicas=2)
    beats(plant, 5, "f1", "f2")
    first = leader(plant)
    second = "monitor-1" if first == "monitor-0" else "monitor-0"
    plant.kill(first)  # SIGKILL: the lease is not released, it expires
    beats(plant, 8, "f2")  # f1 stops meanwhile
    assert plant.component(second).leading and plant.component(second).elector.epoch == 2
    down = reports(plant, "DOWN")
    assert [(r["factoryId"], r["epoch"]) for r in down] == [("f1", 2)]
    assert plant.sent(type="mms.status_report")[-1].source == second
    assert len(reports(plant, "UP")) == 2, "what the first leader got accepted is not reported again"

    plant.revive(first)  # back, as a follower: it campaigns but does not report
    before = len(reports(plant))
    beats(plant, 8, "f1", "f2")  # f1 recovers: reported UP by the leader only
    assert all(e.source == second for e in plant.sent(type="mms.status_report")[before:])
    assert not plant.component(first).leading

    class StaleElector:  # a paused old leader that still believes it holds epoch 1
        name, is_leader, epoch = "mms", True, 1

        def fence(self):
            return 1

    old = plant.component(first)
    old.elector = StaleElector()
    old.reports.ready_epoch = 1  # it had taken over at epoch 1 before it paused (its reports ungated then)

    async def want():  # on the plant's loop: the report is spawned as the component's task
        old.reports.want("f2", "DOWN", "stale view")

    plant._run(want())
    plant.advance(1)
    # its own report first; the stale replica, believing it leads, also reports the silence its check judges
    # at the advance's last instant (epoch 1 too), refused as well
    refused = [(r["factoryId"], r["epoch"]) for r in plant.component("pms").rejected]
    assert refused[0] == ("f2", 1) and {epoch for _, epoch in refused} == {1}, refused
    # the stale replica's event (the leader judges the silence of the last 1.5 s meanwhile: its own events)
    event = plant.sent(type="mms.failover_event", source=first)[-1].payload
    assert (event["outcome"], event["attempts"], event["epoch"]) == ("rejected", 1, 1)


def test_a_deposed_mms_stops_calling_even_between_retries(factory_plant, beats):
    plant = factory_plant(replicas=2, pms={"silent_first": 100})
    beats(plant, 2, "f1")
    first = leader(plant)
    monitor = plant.component(first)
    sent_before = len(plant.sent(type="mms.status_report", source=first))
    assert sent_before >= 1

    class Deposed:
        name, is_leader, epoch = "mms", False, 1

        def fence(self):
            raise NotLeader("deposed")

    real = monitor.elector
    monitor.elector = Deposed()
    plant.advance(10)
    assert len(plant.sent(type="mms.status_report", source=first)) == sent_before, "no attempt after deposition"
    monitor.elector = real


def test_high_risk_drains_an_up_factory_when_another_can_take_its_orders(factory_plant, beats):
    plant = factory_plant(tactics={"risk": {"window": 60.0}})
    beats(plant, 10, "f1", "f2")
    counter = 0
    for _ in range(8):  # f1's error counter rises on 1 beat in 6: > 0.1 over the risk window, under core's 0.2
        for k in range(6):
            counter += 1 if k == 0 else 0
            beats.one(plant, "f1", errors=counter)
            beats.one(plant, "f2")
            plant.advance(1.0)
    risk = [e.payload for e in plant.sent("mms/risk/f1", type="mms.risk_changed")]
    assert risk and risk[0]["risk"] == "HIGH" and risk[0]["previous"] == "LOW" and risk[0]["errorRate"] > 0.1
    drained = reports(plant, "DEGRADED")
    assert [(r["factoryId"], r["reason"]) for r in drained] == [("f1", "risk HIGH")]
    monitor = plant.component("monitor")
    assert str(monitor.faults.status("f1")) == "UP" and monitor.failover.drains == 1
    errors_stopped = plant.clock.time()
    beats(plant, 80, "f1", "f2")  # no new errors: the rate falls under 0.1, then risk_hold (30 s) passes
    lowered = plant.sent("mms/risk/f1", type="mms.risk_changed")[-1]
    assert lowered.payload["risk"] == "LOW" and lowered.payload["previous"] == "HIGH"
    assert lowered.payload["errorRate"] <= 0.1 and lowered.time - errors_stopped >= 30.0
    undrain = plant.sent(type="mms.status_report")[-1]
    assert (undrain.payload["factoryId"], undrain.payload["status"], undrain.payload["reason"]) == (
        "f1", "UP", "risk LOW")
    assert len(reports(plant, "DEGRADED")) == 1, "held: no drain/undrain flapping at the threshold"


def test_no_drain_without_a_healthy_peer(factory_plant, beats):
    plant = factory_plant(tactics={"risk": {"window": 60.0}})
    beats(plant, 10, "f1")
    counter = 0
    for t in range(48):  # 1 beat in 6 with new errors, as above, but f1 is alone
        counter += 1 if t % 6 == 0 else 0
        beats.one(plant, "f1", errors=counter)
        plant.advance(1.0)
    assert plant.component("monitor").risks["f1"] == "HIGH"
    assert reports(plant, "DEGRADED") == [] and plant.component("monitor").failover.drains == 0


class _Wants:
    """A StatusReports stand-in: the wanted reports and the calls to want()."""

    def __init__(self, wanted):
        self.wanted = dict(wanted)
        self.calls = []

    def want(self, factory, status, reason, capacity=None):
        from forge_mms.maintenance.reports import Report

        self.calls.append((factory, status, reason))
        self.wanted[factory] = Report(status, reason, capacity)


def test_on_risks_does_what_on_risk_per_factory_does():
    """The check's one call skips factories on which on_risk would do nothing: every combination of
    risk, status and wanted report of three factories gives the same reports either way."""
    import itertools

    from forge_core.tactics import Status

    from forge_mms.maintenance.failover import RISK_HIGH, FailoverManager
    from forge_mms.maintenance.reports import Report
    from forge_mms.tactics.risk import Risk

    factories = ("f1", "f2", "f3")
    risk_options = (None, Risk.LOW, Risk.MEDIUM, Risk.HIGH)
    status_options = (Status.UP, Status.DEGRADED, Status.DOWN)
    wanted_options = (None, Report("DEGRADED", RISK_HIGH), Report("DOWN", "silent"), Report("UP", "risk LOW"))
    compared = 0
    for risks_of in itertools.product(risk_options, repeat=3):
        risks = {f: r for f, r in zip(factories, risks_of, strict=True) if r is not None}
        for statuses_of in itertools.product(status_options, repeat=2):
            statuses = dict(zip(factories, (*statuses_of, Status.UP), strict=True))
            for wanted_of in itertools.product(wanted_options, repeat=2):
                wanted = {f: w for f, w in zip(factories, wanted_of, strict=False) if w is not None}
                for drain in (True, False):
                    each, once = _Wants(wanted), _Wants(wanted)
                    one_by_one = FailoverManager(each, drain_on_high_risk=drain)  # type: ignore[arg-type]
                    for factory in statuses:
                        one_by_one.on_risk(factory, risks, statuses)
                    together = FailoverManager(once, drain_on_high_risk=drain)  # type: ignore[arg-type]
                    together.on_risks(risks, statuses)
                    assert once.calls == each.calls, (risks, statuses, wanted, drain)
                    assert together.drains == one_by_one.drains
                    compared += bool(each.calls)
    assert compared > 100, "the combinations include many that report"


@pytest.mark.parametrize("seed", range(6))
def test_on_risks_returns_at_once_only_when_on_risk_would_do_nothing(seed):
    """on_risks returns at once while no factory is at HIGH risk and none may be drained for risk (a set
    kept as it drains, pruned as other reports replace a drain). Over random sequences of risks,
    statuses and other wants it makes the calls, check by check, of on_risk asked per factory."""
    import random

    from forge_core.tactics import Status, StatusChange

    from forge_mms.maintenance.failover import FailoverManager
    from forge_mms.tactics.risk import Risk

    rng = random.Random(seed)
    factories = ("f1", "f2", "f3")
    each, once = _Wants({}), _Wants({})
    one_by_one = FailoverManager(each, drain_on_high_risk=True)  # type: ignore[arg-type]
    together = FailoverManager(once, drain_on_high_risk=True)  # type: ignore[arg-type]
    risks: dict[str, Risk] = {}
    statuses = dict.fromkeys(factories, Status.UP)
    returned = 0
    for step in range(600):
        factory = rng.choice(factories)
        op = rng.random()
        if op < 0.3:
            risks[factory] = rng.choice((Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.LOW, Risk.LOW))
        elif op < 0.4:
            new = rng.choice((Status.UP, Status.DEGRADED, Status.DOWN))
            if new is not statuses[factory]:
                change = StatusChange(factory, statuses[factory], new, float(step), "test")
                statuses[factory] = new
                for manager in (one_by_one, together):
                    manager.on_change(change)
        elif op < 0.45:  # the recovery manager's report of a factory back UP
            for wants in (each, once):
                wants.want(factory, "UP", "recovered")
        for f in statuses:
            one_by_one.on_risk(f, risks, statuses)
        calls = len(once.calls)
        together.on_risks(risks, statuses)
        returned += len(once.calls) == calls and not together._drained_for_risk and Risk.HIGH not in risks.values()
        assert once.calls == each.calls, f"seed {seed}, step {step}"
        assert once.wanted == each.wanted
    assert together.drains > 3 and returned > 100


def test_a_new_leader_judges_then_announces_what_it_saw_as_standby_before_it_reports(factory_plant, beats):
    """The leader gets f1's DOWN accepted and dies; the shadow (checking every 5 s) saw f1 otherwise
    (beating again), a status nobody published. Taking over, it judges first, announces that status on
    the status topic, then reports it: watchers of forge.status learn it before the PMS acts on it."""
    plant = factory_plant({"shadow_check_every": 5.0}, replicas=2)
    beats(plant, 5, "f1", "f2")
    first = leader(plant)
    second = "monitor-1" if first == "monitor-0" else "monitor-0"
    beats(plant, 5, "f2")  # f1 silent: DOWN, reported by the leader and accepted
    assert [(r["factoryId"], r["status"]) for r in reports(plant, "DOWN")] == [("f1", "DOWN")]
    plant.kill(first)  # its lease expires after the tactic's ttl
    beats(plant, 12, "f1", "f2")  # f1 beats again; the shadow takes over
    assert plant.component(second).leading
    announced = [e for e in plant.sent("forge/status/+", type="forge.status", source=second)
                 if e.payload["source"] == "f1" and "announced at takeover" in e.payload["reason"]]
    reported = [e for e in plant.sent(type="mms.status_report", source=second) if e.payload["factoryId"] == "f1"]
    assert announced and reported, (announced, reported)
    assert announced[0].payload["previous"] == "DOWN", "what the PMS held"
    assert announced[0].payload["status"] == reported[0].payload["status"] != "DOWN"
    assert plant.observed.index(announced[0]) < plant.observed.index(reported[0]), "announced before reported"
