"""oee_line.sim_plc under virtual time: each change published as opcua.source would, the ground truth kept, and a
PLC restart as the chaos profile makes it (machines down with the restart code, quiet, back at counters 0)."""

from __future__ import annotations

from pathlib import Path

from oee_line.sim.plc import SimPlc

from forge_core.testing import TestPlant

from .conftest import chaos_plant


def test_changes_are_published_with_their_source_timestamps_and_a_restart_resets_the_counters(tmp_path: Path) -> None:
    with TestPlant(chaos_plant(tmp_path, chaos={"enabled": False}), profile="chaos", seed=4, only=["plc1"]) as plant:
        plant.advance(900)
        plc = plant.component("plc1")
        assert isinstance(plc, SimPlc)
        sent = plant.sent("opcua/#", type="opcua.data_change")
        assert len(sent) > 500
        for envelope in sent:
            machine, metric = envelope.payload["tag"].split("/")
            key = (machine, metric, round(envelope.payload["source_timestamp"] * 1000))
            assert plc.samples[key] == envelope.payload["value"]
        for machine, model in plc.model.machines.items():
            assert len(plc.truth[machine].parts) == model.total
            assert sum(good for _, good in plc.truth[machine].parts) == model.good
        before = len(plant.sent("opcua/#"))
        at = plant.clock.time()
        plant.clock.run(plc.restart(60.0))
        down = plant.sent("opcua/#")[before:]
        assert {(e.payload["tag"], e.payload["value"]) for e in down if e.payload["tag"].endswith("FaultCode")} == \
            {(f"{m}/FaultCode", 9000) for m in ("M1", "M2", "M3")}
        assert all(e.payload["source_timestamp"] == round(at * 1000) / 1000 for e in down)
        plant.advance(59.0)
        assert len(plant.sent("opcua/#")) == before + len(down), "quiet while it restarts"
        plant.advance(2.0)
        back = {e.payload["tag"]: e.payload for e in plant.sent("opcua/#")[before + len(down):]}
        for m in ("M1", "M2", "M3"):
            assert back[f"{m}/State"]["value"] == "running"
            assert back[f"{m}/TotalCount"]["value"] == 0 and back[f"{m}/GoodCount"]["value"] == 0
            assert plc.truth[m].states[-2:] == [(round(at * 1000), "down"), (round((at + 60.0) * 1000), "running")] \
                or plc.truth[m].states[-1] == (round((at + 60.0) * 1000), "running")
        # the machines step on after the restart (their timer planned again from the new plans), published as before
        parts = {m: len(plc.truth[m].parts) for m in ("M1", "M2", "M3")}
        plant.advance(300.0)
        assert all(len(plc.truth[m].parts) > parts[m] for m in ("M1", "M2", "M3"))
        after = [e for e in plant.sent("opcua/#")[before + len(down):] if e.payload["tag"].endswith("/TotalCount")]
        for envelope in after:
            machine, metric = envelope.payload["tag"].split("/")
            key = (machine, metric, round(envelope.payload["source_timestamp"] * 1000))
            assert plc.samples[key] == envelope.payload["value"]
        assert max(e.payload["value"] for e in after) > 0
