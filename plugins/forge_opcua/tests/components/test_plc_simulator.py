"""opcua.plc_simulator in a plant: an OPC UA server on the plant's loop whose machines change on the
plant's clock, read by an opcua.source of the same plant; refused under virtual time."""

from __future__ import annotations

from forge_core.testing import TestPlant


def test_refused_under_virtual_time(tmp_path) -> None:
    (tmp_path / "plant.yaml").write_text(
        "version: 1\nplant: {name: sim}\nplugins: [opcua]\ntransports: {bus: {type: memory}}\n"
        "default_transport: bus\ncomponents: {plc: {type: opcua.plc_simulator, params: {port: 0}}}\n"
        "runtime: {restart: {max_restarts: 1}}\n")
    with TestPlant(tmp_path) as plant:
        plant.advance(5)
        error = plant.runtime.supervisors["plc"].last_error
        assert "opcua.plc_simulator 'plc': serves OPC UA over TCP, which needs the real clock" in error
