"""What keeps a simulated chaos day fast without changing what it reports: the monitor reads only
new grants, chaos finds a leader death near a machine death by bisection, production commits
without waiting for the disk under virtual time and formats dates as SQLAlchemy does."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import sqlalchemy as sa
from pasta_plant.components.chaos import Outage
from pasta_plant.db import batches

SOLO = ("scheduler", "storage_monitor")


def test_the_monitor_collects_every_granted_epoch_across_incremental_reads(pasta):
    plant = pasta(drop=SOLO, params={"monitor": {"grants_every": 1.0}})
    backend = plant.runtime.tactics.lease_backend()
    monitor = plant.component("monitor")

    def grant(holders: list[str]) -> None:
        async def run() -> None:
            for holder in holders:  # each lease expired before the next: a new epoch each
                now = plant.clock.time()
                assert await backend.try_acquire("scheduler", holder, 0.5, now) is not None
                await plant.clock.sleep(1.0)
        plant.clock.run(run())

    grant(["a", "b", "c"])
    plant.advance(2)
    grant(["d", "e"])
    plant.advance(2)

    async def history() -> list[int]:
        return [g.epoch for g in await backend.grants("scheduler")]
    epochs = plant.clock.run(history())
    assert len(epochs) == 5 and monitor.granted == set(epochs)
    assert monitor.report()["granted_epochs"] == sorted(epochs)


def test_a_machine_death_near_a_leader_death_gets_the_failover_added_to_its_bound(pasta):
    plant = pasta(drop=("storage_monitor",), profile="chaos")
    chaos = plant.component("chaos")
    fb = chaos.failover_bound
    now = plant.clock.time()
    base = now - 10_000
    machine = [Outage("machine", "machine-0", base + t, bound=32.0) for t in (0, 1000, 2000, 3000)]
    for outage in machine:
        outage.resolved_at = outage.at + 32.0 + fb - 0.5  # over its own bound, within bound + failover
    leaders = [Outage("scheduler", "scheduler-0", base + 1000 - fb, True, resolved_at=base + 1003 - fb, bound=fb),
               Outage("scheduler", "scheduler-1", base + 2000 + 32.0, True, resolved_at=base + 2035, bound=fb)]
    chaos.outages = sorted(machine + leaders, key=lambda o: o.at)
    late = chaos._late("machine")
    # a leader died fb before the second and at the very end of the third one's window: only the first
    # and last (no leader death within [at - fb, at + bound]) are late
    assert [o.at - base for o in late] == [0, 3000]
    assert chaos._late("scheduler") == []


def test_production_commits_without_fsync_under_virtual_time_and_stores_sqlalchemys_date_text(pasta):
    plant = pasta(drop=SOLO)
    plant.publish("productionPlan/assignBlade", "sched.assign_blade", {"title": "AssignBlade", "machineId": 0,
                                                                       "bladeType": "A"}, headers=_stamp())
    plant.advance(6)
    production = plant.component("production")
    assert production.group is not None and production.group.conn is not None, "a beat opened the group"
    cursor = production.group.conn.connection.cursor()  # the connection production writes on
    cursor.execute("PRAGMA synchronous")
    assert cursor.fetchone()[0] == 0  # OFF: the engine's NORMAL is for real time
    cursor.close()
    with production.engine.connect() as conn:
        text, parsed = conn.execute(sa.select(sa.cast(batches.c.production_date, sa.Text),
                                              batches.c.production_date).order_by(batches.c.id.desc())).first()
    assert parsed.replace(tzinfo=UTC) <= datetime.fromtimestamp(plant.clock.time(), UTC)
    assert text == parsed.strftime("%Y-%m-%d %H:%M:%S.%f")


def _stamp() -> dict[str, str]:
    from pasta_plant.testing import stamped

    return stamped(1)


def test_under_virtual_time_beats_share_a_transaction_that_a_kill_or_any_reader_commits(pasta):
    """Grouped commits keep what a commit per beat keeps: a reader through the engine sees every
    handled beat, and a kill (no stop()) leaves every handled beat in the database."""
    import sqlite3

    plant = pasta(drop=("machine", "scheduler", "storage_monitor", "sorting", "monitor", "chaos"))
    production = plant.component("production")
    path = production.engine.url.database

    def beat(heartbeat_id: str) -> None:
        plant.publish_raw("heartbeats", {"title": "heartbeat", "machineId": 0, "bladeType": "A"},
                          headers={"ce_id": heartbeat_id})
        plant.advance(0.1)

    def outside() -> int:  # a connection the engine does not know: sees only what is committed
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return conn.execute("SELECT count(*) FROM batches WHERE heartbeat_id IS NOT NULL").fetchone()[0]

    beat("hb-1")
    beat("hb-2")
    assert outside() == 0 and len(production.group.pending) == 2  # one open transaction
    plant.kill("production")
    assert outside() == 4, "a kill lost beats production had handled"
    plant.revive("production")
    beat("hb-3")
    production = plant.component("production")
    assert outside() == 4
    with production.engine.connect() as conn:  # any checkout of the engine commits the group first
        assert conn.execute(sa.select(sa.func.count()).select_from(batches)
                            .where(batches.c.heartbeat_id.is_not(None))).scalar() == 6
    assert outside() == 6 and production.group.pending == []
    assert all(c.passed for c in production.checks())
