"""mms.factory_monitor across its own interruptions: a restart, a leader handover, a starved event loop."""

from __future__ import annotations

import sqlalchemy as sa


def reports(plant, status=None):
    return [e.payload for e in plant.sent(type="mms.status_report") if status is None or e.payload["status"] == status]


def leader(plant) -> str:
    return next(n for n in ("monitor-0", "monitor-1") if plant.state(n) == "running" and plant.component(n).leading)


def test_a_factory_that_died_while_the_only_monitor_was_down_still_goes_down(factory_plant, beats):
    """One replica, restarted: the factories it knew come from factory_status, so one that stopped
    beating while it was down is DOWN one timeout after the restart (before: never, it was unknown)."""
    plant = factory_plant()
    beats(plant, 5, "f1", "f2")
    plant.kill("monitor")  # f1 dies while the monitor is down
    beats(plant, 10, "f2")
    plant.revive("monitor")
    back = plant.clock.time()
    beats(plant, 10, "f2")
    down = reports(plant, "DOWN")
    assert [r["factoryId"] for r in down] == ["f1"], reports(plant)
    verdict = next(e for e in plant.sent("forge/status/f1", type="forge.status") if e.payload["status"] == "DOWN")
    assert 3.0 < verdict.time - back <= 3.0 + 1.0 + 1e-6, "one timeout after the restart, checked every second"
    assert plant.component("monitor").faults.status("f2").value == "UP"


def test_a_factory_down_before_the_restart_stays_down_and_recovers_on_its_beats(factory_plant, beats):
    plant = factory_plant()
    beats(plant, 5, "f1", "f2")
    beats(plant, 6, "f2")  # f1 DOWN, reported
    assert [r["factoryId"] for r in reports(plant, "DOWN")] == ["f1"]
    plant.kill("monitor")
    plant.advance(10)
    plant.revive("monitor")
    beats(plant, 3, "f2")
    assert len(reports(plant, "DOWN")) == 1 and plant.component("monitor").faults.status("f1").value == "DOWN"
    beats(plant, 6, "f1", "f2")  # five healthy beats: recovered
    assert reports(plant)[-1]["factoryId"] == "f1" and reports(plant)[-1]["status"] == "UP"


def test_beats_heard_while_no_replica_leads_are_recorded_once(factory_plant, beats):
    """The leader is SIGKILLed: its lease runs out before the follower leads. Every beat of that
    handover is written by the successor (before: lost), and none twice."""
    plant = factory_plant({"flush_every": 1.0, "simulated_flush_every": None}, replicas=2)  # a real clock's flush
    beats(plant, 5, "f1")
    first = leader(plant)
    plant.kill(first)
    beats(plant, 15, "f1")
    second = leader(plant)
    assert second != first
    beats(plant, 3, "f1")
    plant.advance(2)
    with plant.component(second).ctx.storage.connect() as conn:
        rows = conn.execute(sa.text("SELECT received_at FROM heartbeats WHERE factory_id = 'f1' "
                                    "ORDER BY received_at")).scalars().all()
    sent = [e.time for e in plant.sent("factory/f1/heartbeat")]
    assert len(rows) == len(set(rows)), "no beat written twice"
    # every beat but those the killed leader held unwritten when it died (flushed every second) and
    # those its successor had heard before... none: the successor heard all of them
    assert rows == sent, (len(rows), len(sent))
    assert plant.component(second).store.stats["beats_already_written"] >= 4


def test_a_simulated_run_writes_beats_in_larger_batches_and_loses_none_to_a_kill(factory_plant, beats):
    """Under the virtual clock beats are written every simulated_flush_every (10 s), not every
    second; a killed leader's unwritten beats (up to 10 s of them) are its successor's to write."""
    plant = factory_plant({"flush_every": 1.0}, replicas=2)
    beats(plant, 5, "f1")
    first = leader(plant)
    assert plant.component(first).store.stats["beats_written"] == 0, "nothing written before 10 s"
    beats(plant, 6, "f1")
    assert plant.component(first).store.stats["beats_written"] >= 9, "one batch at 10 s"
    beats(plant, 7, "f1")
    written = plant.component(first).store.stats["beats_written"]
    plant.kill(first)  # its beats since the last flush die with it
    beats(plant, 15, "f1")
    second = leader(plant)
    assert second != first
    beats(plant, 12, "f1")
    plant.advance(10)  # the successor's next batch
    with plant.component(second).ctx.storage.connect() as conn:
        rows = conn.execute(sa.text("SELECT received_at FROM heartbeats WHERE factory_id = 'f1' "
                                    "ORDER BY received_at")).scalars().all()
    sent = [e.time for e in plant.sent("factory/f1/heartbeat")]
    assert written < 18 and rows == sent, (written, len(rows), len(sent))


def _stall(plant, seconds: float) -> None:
    """The whole loop is busy for ``seconds`` (every timer runs late), as core's starvation tests do."""
    def busy() -> None:
        plant.clock.loop._virtual_now[0] += seconds  # private: no public way to stall a virtual loop
    plant.clock.call_later(0.0, busy)


def test_a_starved_monitor_holds_its_verdicts(factory_plant, beats):
    """The event loop stalls for 5 s: the check runs late, so the monitor says it was starved and
    gives no DOWN for the factories whose beats were waiting behind the stall (before: both DOWN)."""
    plant = factory_plant()
    beats(plant, 10, "f1", "f2")
    _stall(plant, 5.0)
    beats(plant, 10, "f1", "f2")
    assert not reports(plant, "DOWN"), reports(plant)
    health = plant.component("monitor").health()
    assert health["monitor_starved"]["starved_evaluations"] >= 1 and health["monitor_starved"]["max_lag"] > 3.0
    assert health["factories"] == {"f1": "UP", "f2": "UP"}


def test_beats_queued_in_the_transport_are_not_silence_but_a_dead_factory_still_is(factory_plant, beats):
    plant = factory_plant()
    beats(plant, 10, "f1", "f2")
    transport = plant.transport("bus")
    transport.faults.delay("factory/+/heartbeat", seconds=4.0)  # every beat reaches the monitor 4 s late...
    transport.backlog_age = lambda: 4.0  # ...because it waits in the transport's inbox
    beats(plant, 10, "f1", "f2")
    assert not reports(plant, "DOWN"), reports(plant)
    assert plant.component("monitor").health()["transport_backlog"]["max_age"] == 4.0
    beats(plant, 12, "f2")  # f1 stops: DOWN once its silence, judged 4 s back, exceeds the timeout
    assert [r["factoryId"] for r in reports(plant, "DOWN")] == ["f1"]


def test_a_simulated_monitor_writes_on_one_kept_connection_and_gives_it_back_when_killed(factory_plant, beats):
    """Under the virtual clock the leader's writes (beat flushes, status rows) use one connection kept between
    them, not a pool checkout each; killing the leader (no stop()) gives it back, and the successor's writes,
    visible to any other connection, take one of their own."""
    plant = factory_plant(replicas=2)
    first = leader(plant)
    engine = plant.component(first).ctx.storage
    checkouts = []
    sa.event.listen(engine, "checkout", lambda *args: checkouts.append(1))
    beats(plant, 25, "f1", "f2")
    store = plant.component(first).store
    assert store.stats["beats_written"] >= 40 and store.keep_connection
    assert len(checkouts) <= 1 and engine.pool.checkedout() == 1, "one connection for every write"
    plant.kill(first)
    assert engine.pool.checkedout() == 0 and not store.keep_connection, "the killed leader's connection went back"
    beats(plant, 25, "f1")  # f2 silent: DOWN, its status row written by the successor
    second = leader(plant)
    assert second != first and engine.pool.checkedout() == 1
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM factory_status WHERE factory_id = 'f2'")).scalar() == "DOWN"
        assert conn.execute(sa.text("SELECT count(*) FROM heartbeats WHERE factory_id = 'f1'")).scalar() >= 45
