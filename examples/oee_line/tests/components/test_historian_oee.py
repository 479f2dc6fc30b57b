"""The historian and the OEE component on the plant's own plant.yaml (only those two, memory bus, SQLite,
virtual time), fed a simulated line's values as the Sparkplug host reports them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
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


def _held_plant(tmp_path: Path, group: int = 0) -> TestPlant:
    """The plant with the historian holding what arrives for 10 s of plant time (the chaos profile's setting);
    ``group``: its virtual_commit_samples (0: a transaction per write, which these tests count through
    ``store.write``; test_historian_group.py has the commit group's)."""
    doc = yaml.safe_load((PLANT / "plant.yaml").read_text())
    doc["components"]["historian"]["params"] = {"commit_every": 10, "virtual_commit_samples": group}
    (tmp_path / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return TestPlant(tmp_path, only=["historian"], env={"OEE_DB_URL": f"sqlite:///{tmp_path}/oee.db"})


def _stored(historian: Historian) -> int:
    with historian.store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(telemetry)).scalar() or 0)


def test_commit_every_holds_what_arrives_and_writes_it_in_one_transaction(tmp_path: Path) -> None:
    models = machines({"M1": 2.0}, seed=9)
    bodies = [body for _, body in host_messages(models, 120.0)]
    with _held_plant(tmp_path) as plant:
        historian = plant.component("historian")
        assert isinstance(historian, Historian)
        writes: list[int] = []
        write = historian.store.write
        historian.store.write = lambda samples, states=(): writes.append(len(samples)) or write(samples, states)  # type: ignore[method-assign]
        for body in bodies + bodies[:20]:  # with a replay of the first 20
            plant.publish("sparkplug/data/line1/edge-1/M1", "sparkplug.metrics", body)
        plant.run_until(lambda: historian.report()["messages"] == len(bodies) + 20, timeout=5)
        assert _stored(historian) == 0 and len(historian.held) == len(bodies) + 20  # held, not yet written
        plant.advance(10.5)
        assert len(writes) == 1 and historian.held == []  # one transaction for all of them
        numeric = {(x["name"], x["timestamp"]) for b in bodies for x in b["metrics"] if x["name"] != "State"}
        assert _stored(historian) == historian.report()["stored"] == len(numeric)
        plant.publish("sparkplug/data/line1/edge-1/M1", "sparkplug.metrics", bodies[-1])
    assert len(writes) == 2  # what was held at stop was written


def test_a_failed_commit_dead_letters_every_message_it_held(tmp_path: Path) -> None:
    models = machines({"M1": 2.0}, seed=9)
    bodies = [body for _, body in host_messages(models, 60.0)]
    with _held_plant(tmp_path) as plant:
        historian = plant.component("historian")
        assert isinstance(historian, Historian)

        def broken(samples: object, states: object = ()) -> int:
            raise RuntimeError("disk full")

        historian.store.write = broken  # type: ignore[assignment,method-assign]
        for body in bodies:
            plant.publish("sparkplug/data/line1/edge-1/M1", "sparkplug.metrics", body)
        plant.run_until(lambda: historian.report()["messages"] == len(bodies), timeout=5)
        plant.advance(10.5)
        letters = [d for d in plant.dead_letters if d.component == "historian"]
        assert len(letters) == len(bodies) == historian.report()["errors"]
        assert [d.envelope.payload for d in letters if d.envelope is not None] == bodies
        assert "disk full" in letters[0].detail


def test_commit_every_is_refused_under_the_real_clock(tmp_path: Path) -> None:
    import asyncio
    from types import SimpleNamespace

    from oee_line.settings import HistorianParams

    from forge_core.storage import create_engine_from_url

    engine = create_engine_from_url(f"sqlite:///{tmp_path}/oee.db")
    ctx = SimpleNamespace(name="historian", params=HistorianParams(commit_every=10), clock=SimpleNamespace(),
                          storage=engine)  # a clock without is_virtual: the real one
    with pytest.raises(ValueError, match=r"'historian': params.commit_every is 10 s under the real clock"):
        asyncio.run(Historian(ctx).start())  # type: ignore[arg-type]
    engine.dispose()
