"""The historian and the OEE component on the plant's own plant.yaml (only those two, memory bus, SQLite,
virtual time), fed a simulated line's values as the Sparkplug host reports them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from forge_opcua.settings import MachineTiming
from oee_line.components.historian import Historian
from oee_line.components.oee import OeeCalculator, compute_window
from oee_line.oee import ShiftWindow, combine, compute
from oee_line.storage.tables import ROLLUPS, events, telemetry
from oee_line.testing import host_messages, machines

from forge_core.testing import TestPlant

PLANT = Path(__file__).resolve().parents[2]
CYCLES = {"M1": 2.0, "M2": 3.0, "M3": 1.5}


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[TestPlant]:
    test_plant = TestPlant(PLANT, only=["historian", "oee"], env={"OEE_DB_URL": f"sqlite:///{tmp_path}/oee.db"})
    with test_plant:
        yield test_plant


def test_oee_from_stored_data_equals_the_simulators_ground_truth(plant: TestPlant) -> None:
    # ten minutes of busy machines (a stop every 2 min on average): each publish settles the plant, so keep it short
    models = machines(CYCLES, seed=5, timing=MachineTiming(mean_running=120, mean_idle=20, mean_down=40,
                                                            mean_setup=60))
    hours = 600 / 3600
    for _, body in host_messages(models, hours * 3600.0):
        plant.publish(f"sparkplug/data/line1/edge-1/{body['device']}", "sparkplug.metrics", body)
    plant.run_until(lambda: plant.component("historian").report()["messages"] > 0, timeout=5)
    plant.advance(1.0)
    oee = plant.component("oee")
    assert isinstance(oee, OeeCalculator)
    window = ShiftWindow("test", 0, 0.0, hours * 3600.0)
    windows = compute_window(oee.store, oee.params, window)
    truth = {}
    for mid, m in models.items():
        truth[mid] = compute(hours * 3600.0, m.totals.seconds["running"], m.ideal_cycle_time, m.total, m.good)
        got = windows[mid].figures
        transitions = sum(m.totals.stops.values()) * 2
        assert transitions > 4
        assert (got.total, got.good) == (m.total, m.good)
        # Sparkplug timestamps are whole milliseconds: each transition may move by 0.5 ms
        assert got.run_time == pytest.approx(m.totals.seconds["running"], abs=transitions * 5e-4 + 1e-6)
        assert got.oee == pytest.approx(truth[mid].oee, abs=1e-5)
    line = combine(w.figures for w in windows.values())
    assert line.oee == pytest.approx(combine(truth.values()).oee, abs=1e-5)
    plant.advance(oee.params.interval + 1)  # the component publishes the current shift's figures by itself
    plant.run_until(lambda: len(plant.sent("oee/line1/#", type="oee_line.oee")) >= 4, timeout=30)
    sent = plant.sent("oee/line1/#", type="oee_line.oee")
    assert {(e.payload["scope"], e.payload["id"]) for e in sent} >= {("machine", "M1"), ("line", "line1")}


def test_the_historian_stores_each_sample_once_and_rolls_up(plant: TestPlant) -> None:
    models = machines({"M1": 2.0}, seed=9)
    bodies = [body for _, body in host_messages(models, 900.0)]
    for body in bodies + bodies[:50]:  # a replay of the first 50 messages (store-and-forward, a rebirth)
        plant.publish("sparkplug/data/line1/edge-1/M1", "sparkplug.metrics", body)
    historian = plant.component("historian")
    assert isinstance(historian, Historian)
    plant.run_until(lambda: historian.report()["messages"] == len(bodies) + 50, timeout=10)
    engine = historian.store.engine
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(telemetry)).scalar()
        one_minute = conn.execute(sa.select(sa.func.sum(ROLLUPS[0].table.c.count))).scalar()
        states = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()
    numeric = sum(1 for b in bodies for x in b["metrics"] if x["name"] != "State")
    assert historian.report()["stored"] == rows == one_minute
    assert rows <= numeric  # a birth and a change at the same millisecond are one sample
    assert states == 1 + sum(models["M1"].totals.stops.values()) * 2 - (models["M1"].state != "running")
