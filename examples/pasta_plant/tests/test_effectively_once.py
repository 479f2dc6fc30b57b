"""Production is effectively once (issue 11 drill finding): a heartbeat handled and committed in the
database but not yet committed on Kafka (production SIGKILLed, or its consumer group's session
timed out during a broker outage) is delivered again; its envelope id, recorded with its batches in
the same transaction, makes the redelivery a no-op. And the whole-plant check counts batches per
heartbeat id, so a duplicate in the database fails it with the numbers."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from pasta_plant.count_checks import count_checks
from pasta_plant.db import SEED_DATE, batches

from forge_core.runtime import RunSummary

#: production alone: the test is the machines (and Kafka's redelivery)
ONLY_PRODUCTION = ("machine", "scheduler", "storage_monitor", "sorting", "monitor", "chaos")
CHECK = "every bladed heartbeat sent is two batches in the database"


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The plant's storage section: its own SQLite file, or a fresh database on real PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"storage": {"url": request.getfixturevalue("postgres_url"), "migrate_on_start": True}}


def beat(plant: Any, heartbeat_id: str, machine: int = 0, blade: str = "A") -> None:
    """A bladed heartbeat as the Kafka transport delivers it: the envelope id in the headers."""
    plant.publish_raw("heartbeats", {"title": "heartbeat", "machineId": machine, "bladeType": blade},
                      headers={"ce_id": heartbeat_id})
    plant.advance(0.1)


def rows(plant: Any) -> list[tuple[int, str | None, bool]]:
    production = plant.component("production")
    with production.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(batches.c.id, batches.c.heartbeat_id, batches.c.is_fresh)
                                               .where(batches.c.heartbeat_id.is_not(None)).order_by(batches.c.id))]


def test_a_heartbeat_redelivered_after_a_crash_makes_no_second_batch(pasta, storage):
    plant = pasta(drop=ONLY_PRODUCTION, **storage)
    beat(plant, "hb-1")
    beat(plant, "hb-2", machine=1, blade="B")
    made = rows(plant)
    assert [(h, f) for _, h, f in made] == [("hb-1", True), ("hb-1", False), ("hb-2", True), ("hb-2", False)]
    stock = plant.component("production").total
    # SIGKILL after the database committed hb-2, before Kafka committed its offset: the next life
    # gets hb-2 again (same envelope id), then a new one
    plant.kill("production")
    plant.revive("production")
    beat(plant, "hb-2", machine=1, blade="B")
    production = plant.component("production")
    assert rows(plant) == made, "the redelivered heartbeat made batches again"
    assert production.book["redeliveries_skipped"] == 1 and production.total == stock
    beat(plant, "hb-3")
    assert len(rows(plant)) == 6 and production.total == stock == 200  # production goes on, at the target
    report = production.report()
    assert report["run_per_heartbeat"] == {"heartbeats": 3, "duplicated": 0, "extra_batches": 0, "examples": {},
                                           "untracked_batches": 0}
    assert report["run_redeliveries_skipped"] == 1
    assert all(c.passed for c in production.checks()), [c for c in production.checks() if not c.passed]


def test_the_same_life_skips_a_redelivery_too(pasta):
    """A consumer group's session timeout redelivers to the same, living consumer."""
    plant = pasta(drop=ONLY_PRODUCTION)
    beat(plant, "hb-1")
    beat(plant, "hb-1")
    production = plant.component("production")
    assert len(rows(plant)) == 2 and production.book["redeliveries_skipped"] == 1
    assert production.book["batches"] == 2 and production.total == 200


def _summary(production_report: dict[str, Any], bladed: int) -> RunSummary:
    machine = {"odometer": {"counts": {"beats": bladed, "bladed_beats": bladed}, "times": {"bladed_beats": [0.0]}}}
    return RunSummary(plant="pasta_plant", profile=None, clock="virtual", seed=1, duration=1.0, wall_seconds=1.0,
                      reports={"machine-0": machine, "production": production_report})


def test_the_whole_plant_check_fails_on_a_database_holding_a_duplicate(pasta, storage):
    """What the drill's runs had before the fix: one heartbeat's batches twice. The check must see it
    (it used to pass: more batches than expected were taken for an earlier run's beats)."""
    plant = pasta(drop=ONLY_PRODUCTION, **storage)
    beat(plant, "hb-1")
    beat(plant, "hb-2")
    production = plant.component("production")
    check = {c.name: c for c in count_checks(_summary(production.report(), 2))}[CHECK]
    assert check.passed, check.detail
    # the duplicate as the unfixed production wrote it: the unique index is not there to refuse it
    with production.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ux_batches_heartbeat"))
        top = conn.execute(sa.select(sa.func.max(batches.c.id))).scalar()
        conn.execute(sa.insert(batches), [
            {"id": top + 1, "blade_type": "A", "is_fresh": True, "production_date": SEED_DATE, "in_stock": 4,
             "heartbeat_id": "hb-2"},
            {"id": top + 2, "blade_type": "A", "is_fresh": False, "production_date": SEED_DATE, "in_stock": 6,
             "heartbeat_id": "hb-2"}])
    report = production.report()
    assert report["run_per_heartbeat"]["duplicated"] == 1 and report["run_per_heartbeat"]["extra_batches"] == 2
    check = {c.name: c for c in count_checks(_summary(report, 2))}[CHECK]
    assert not check.passed
    assert "6 batches in the database for 2 bladed heartbeats" in check.detail
    assert "2 heartbeat id(s), 1 with more than two batches (2 extra batch(es)" in check.detail
    assert "hb-2 x4" in check.detail
    own = {c.name.split(" (")[0]: c for c in production.checks()}["no heartbeat produced twice"]
    assert not own.passed and "1 with more than two batches" in own.detail
