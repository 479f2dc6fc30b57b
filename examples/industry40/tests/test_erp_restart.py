"""A killed ``industry40.erp_link`` restarts from its rows in the plant's database (embedded plant,
virtual time): a request it asked for before the kill is still accounted for, and an order a factory
completed while it was dead (the completion went past it) is exported once, after the restart."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from forge_b2mml import build_schedule
from industry40.testing import registered_types

pytestmark = pytest.mark.skipif(
    not registered_types() >= {"sched.order_scheduler", "mms.factory_monitor", "b2mml.drop_folder"},
    reason="forge-sched, forge-mms or forge-b2mml missing")

QUIET = {"clients": {"enabled": False}, "erp": {"enabled": False}}
REQUEST = {"request_id": "PR-1", "start_time": "2030-01-01T06:00:00Z", "end_time": "2030-01-02T06:00:00Z",
           "process_segment_id": "ASSEMBLY", "material_definition_id": "gearbox", "quantity": 2, "unit": "KG"}


def test_a_link_killed_before_the_completion_exports_it_once_after_its_restart(plant40):
    plant = plant40(params=QUIET, drop=("chaos",))
    plant.advance(5)
    inbox = plant.manifest.plant_dir / "inbox"
    inbox.mkdir(exist_ok=True)
    (inbox / ".ps.xml").write_bytes(build_schedule([REQUEST, {**REQUEST, "request_id": "PR-2", "quantity": 60}],
                                                   version="V0600", schedule_id="PS-9",
                                                   published="2030-01-01T05:00:00Z"))
    os.replace(inbox / ".ps.xml", inbox / "ps.xml")
    plant.advance(6)                      # imported, asked, answered: both orders placed
    with plant.component("erp_link").state.engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT key, status FROM industry40_erp_requests")).all())
    assert set(stored) == {"request:V0600:PS-9:PR-1", "request:V0600:PS-9:PR-2"}
    assert set(stored.values()) <= {"assigned", "in_progress"}, stored
    plant.kill("erp_link")
    plant.advance(20)                     # PR-1 (2 units: 3 s) completes while no link listens
    completions = plant.sent("factory/+/completed", type="sched.order_completed")
    assert completions, "the small order was not completed while the link was dead"
    assert not list((plant.manifest.plant_dir / "outbox").glob("PERF-*.xml"))
    plant.revive("erp_link")
    plant.advance(10)                     # restored from its rows: asks the PMS how each open order stands
    link = plant.component("erp_link")
    assert link.counts["restored"] == 2 and link.counts["reconciled"] == 2, link.counts
    plant.advance(60)                     # PR-2 (60 units: 32 s) completes with the link alive
    perf = sorted((plant.manifest.plant_dir / "outbox").glob("PERF-*.xml"))
    assert len(perf) == 2, perf
    assert all(b"<UnitOfMeasure>KG</UnitOfMeasure>" in p.read_bytes() for p in perf)  # the unit kept across the kill
    summary = plant.stop()
    failed = [(c.name, c.detail) for c in summary.checks if not c.passed]
    assert not failed, failed
    details = {c.name: c.detail for c in summary.checks if c.component == "erp_link"}
    assert details["every completed ERP order exported exactly once"].startswith("2 exported"), details
