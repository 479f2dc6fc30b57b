"""opcua.plc_simulator in a plant: an OPC UA server on the plant's loop whose machines change on the
plant's clock, read by an opcua.source of the same plant; refused under virtual time."""

from __future__ import annotations

import pytest
from forge_core.testing import TestPlant, find_free_port

pytestmark = pytest.mark.servers


def test_a_plant_serves_its_machines_and_reads_them_back(kit, tmp_path) -> None:
    port = find_free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/forge/plc"
    components = {
        "plc": {"type": "opcua.plc_simulator", "params": {"port": port, "machines": ["Press", "Lathe"],
                                                           "timing": kit.BUSY, "tick": 0.05}},
        "gateway": kit.source(endpoint, browse=[{"path": "Machines"}]),
    }

    async def scenario() -> None:
        async with kit.real_plant(tmp_path, components) as plant:
            def counts():
                press = plant.messages("opcua.data_change", lambda m: m["tag"] == "Press/TotalCount")
                return [m["value"] for m in press]

            await plant.until(lambda: len(counts()) >= 10, what="the press counting")
            assert counts() == sorted(counts())
            states = {m["value"] for m in plant.messages("opcua.data_change", lambda m: m["tag"].endswith("/State"))}
            assert states <= {"running", "idle", "down", "setup"}
            plc = plant.component("plc")
            assert plc.health() == {"endpoint": endpoint, "subscriptions": 1}
            truth = plc.report()["machines"]
            assert set(truth) == {"Press", "Lathe"} and truth["Press"]["total"] >= counts()[-1]
            cycle = plant.messages("opcua.data_change", lambda m: m["tag"] == "Lathe/IdealCycleTime")
            assert cycle[0]["value"] == kit.BUSY["ideal_cycle_time"]

    kit.run(scenario())


def test_refused_under_virtual_time(tmp_path) -> None:
    (tmp_path / "plant.yaml").write_text(
        "version: 1\nplant: {name: sim}\nplugins: [opcua]\ntransports: {bus: {type: memory}}\n"
        "default_transport: bus\ncomponents: {plc: {type: opcua.plc_simulator, params: {port: 0}}}\n"
        "runtime: {restart: {max_restarts: 1}}\n")
    with TestPlant(tmp_path) as plant:
        plant.advance(5)
        error = plant.runtime.supervisors["plc"].last_error
        assert "opcua.plc_simulator 'plc': serves OPC UA over TCP, which needs the real clock" in error
