"""opcua.source against a real asyncua server (the simulated PLC on the test's loop): data changes
become messages with value, timestamps and quality; bad nodes are refused naming node and component;
an unreachable server is retried, not fatal."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from asyncua import ua
from forge_core import ManifestError
from forge_core.runtime import load_plant

from forge_opcua.testing import PlcSimulatorServer

pytestmark = pytest.mark.servers


def stamp(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


async def write(plc, name: str, value, variant: ua.VariantType, status=ua.StatusCodes.Good, at: float = 0.0):
    data = ua.DataValue(ua.Variant(value, variant), ua.StatusCode(status), SourceTimestamp=stamp(at) if at else None,
                        ServerTimestamp=dt.datetime.now(dt.UTC))
    await plc.server.write_attribute_value(plc._nodes[name], data)


def test_data_changes_become_messages_in_order_with_timestamps(kit, tmp_path) -> None:
    async def scenario() -> None:
        async with kit.plc_server() as plc:
            components = {"line": kit.source(plc.endpoint, browse=[{"path": "Machines"}],
                                             nodes=[{"node_id": kit.node("M2.GoodCount"), "tag": "m2_good"}])}
            async with kit.real_plant(tmp_path, components) as plant:
                # the initial value of every variable: 6 per machine, M2.GoodCount under its own tag
                changes = await plant.until(lambda: len(plant.messages("opcua.data_change")) >= 12 and
                                            plant.messages("opcua.data_change"), what="initial values")
                tags = {m["tag"] for m in changes}
                assert "m2_good" in tags and "M2/GoodCount" not in tags and "M1/State" in tags
                assert len(tags) == 12
                first = next(m for m in changes if m["tag"] == "M1/State")
                assert first["value"] == "running" and first["data_type"] == "String"
                assert first["node_id"] == f"ns={plc.namespace_index};s=M1.State"
                assert first["quality"] == "good" and first["status"] == "Good" and first["status_code"] == 0
                assert first["endpoint"] == plc.endpoint
                plant.seen.clear()
                for count in range(1, 6):
                    await write(plc, "M1.TotalCount", count, ua.VariantType.UInt32, at=1_700_000_000.0 + count)
                counts = await plant.until(lambda: [m for m in plant.messages("opcua.data_change")
                                                    if m["tag"] == "M1/TotalCount"] if len(
                    plant.messages("opcua.data_change")) >= 5 else None, what="five counts")
                assert [m["value"] for m in counts] == [1, 2, 3, 4, 5]
                assert [m["source_timestamp"] for m in counts] == [1_700_000_000.0 + n for n in range(1, 6)]
                assert all(m["server_timestamp"] is not None for m in counts)
                assert set(plant.topics("opcua.data_change")) == {"opcua/line/M1/TotalCount"}
                health = plant.component("line").health()
                assert health["ready"] and health["monitored_items"] == 12 and health["dropped"] == 0
                status = plant.messages("opcua.source_status")
                assert status == [] or status[-1]["connected"]

    kit.run(scenario())


def test_quality_follows_the_status_code(kit, tmp_path) -> None:
    async def scenario() -> None:
        async with kit.plc_server() as plc:
            components = {"q": kit.source(plc.endpoint, nodes=[kit.node("M1.FaultCode")])}
            async with kit.real_plant(tmp_path, components) as plant:
                await plant.until(lambda: plant.messages("opcua.data_change"), what="initial value")
                for value, status in ((7, ua.StatusCodes.UncertainLastUsableValue),
                                      (8, ua.StatusCodes.BadSensorFailure), (9, ua.StatusCodes.GoodClamped)):
                    await write(plc, "M1.FaultCode", value, ua.VariantType.Int32, status)
                seen = await plant.until(lambda: len(plant.messages("opcua.data_change")) >= 4 and
                                         plant.messages("opcua.data_change")[1:], what="three writes")
                # a Bad status carries no value (Part 4, 7.11: the value is null)
                assert [(m["value"], m["quality"], m["status"]) for m in seen] == [
                    (7, "uncertain", "UncertainLastUsableValue"), (None, "bad", "BadSensorFailure"),
                    (9, "good", "GoodClamped")]

    kit.run(scenario())


@pytest.mark.parametrize(("params", "expected"), [
    ({"nodes": ["nsu=urn:forge:opcua:plc-simulator;s=M9.State"]},
     "node 'nsu=urn:forge:opcua:plc-simulator;s=M9.State' does not exist on the server (BadNodeIdUnknown)"),
    ({"nodes": ["nsu=urn:forge:opcua:plc-simulator;s=M1"]}, "is a Object, not a variable"),
    ({"nodes": ["nsu=urn:nowhere;s=M1.State"]}, "the server has no namespace 'urn:nowhere'"),
    ({"browse": [{"path": "Machines/M7"}]}, "browse path 'Machines/M7': Objects/Machines has no child 'M7' "
                                            "(it has ['M1', 'M2'])"),
    ({"nodes": ["nsu=urn:forge:opcua:plc-simulator;s=M1.State", "nsu=urn:forge:opcua:plc-simulator;s=M2.State"]},
     "tag 'State' names two nodes (ns=1;s=M1.State and ns=1;s=M2.State); give them distinct tags"),
])
def test_a_bad_node_fails_start_naming_node_component_and_endpoint(kit, tmp_path, params, expected) -> None:
    async def scenario() -> None:
        async with kit.plc_server() as plc, kit.real_plant(tmp_path, {"bad": kit.source(plc.endpoint, **params)}) \
                as plant:
            supervisor = plant.runtime.supervisors["bad"]
            await plant.until(lambda: supervisor.last_error, what="the start to fail")
            assert f"opcua.source 'bad' ({plc.endpoint}): " in supervisor.last_error
            assert expected in supervisor.last_error
            assert plant.state("bad") != "running"

    kit.run(scenario())


def test_forge_validate_names_a_node_id_typo(kit, tmp_path) -> None:
    params = {"nodes": ["ns=2;s=M1.State", "ns=two;s=M1.State"], "browse": [{"root": "Machines"}]}
    root = kit.write_plant(tmp_path / "plant", {"line": kit.source("opc.tcp://127.0.0.1:4840/", **params)})
    with pytest.raises(ManifestError) as caught:
        load_plant(root)
    found = {(p.path, p.message) for p in caught.value.problems}
    expected = ("item 1: 'ns=two;s=M1.State' is not an OPC UA node id (invalid literal for int() with base 10: "
                "'two'); write e.g. ns=2;s=M1.State, ns=2;i=1001, i=2258 or "
                "nsu=urn:forge:opcua:plc-simulator;s=M1.State")
    assert any(path == "components.line.params.nodes" and expected in message for path, message in found), found
    assert any(path == "components.line.params.browse.0.root" and "'Machines' is not an OPC UA node id" in message
               for path, message in found), found
    forge = Path(sys.executable).with_name("forge")
    cli = subprocess.run([str(forge), "validate", str(root)], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1
    assert "plant.yaml:" in cli.stdout + cli.stderr and "'ns=two;s=M1.State' is not an OPC UA node id" in \
        cli.stdout + cli.stderr


def test_unreachable_at_start_then_subscribed_when_the_server_comes(kit, tmp_path) -> None:
    server = PlcSimulatorServer(params={"machines": ["M1"], "timing": kit.STILL})
    try:
        async def scenario() -> None:
            components = {"late": kit.source(server.endpoint, nodes=[server.node("M1.State")])}
            async with kit.real_plant(tmp_path, components) as plant:
                source = plant.component("late")
                assert plant.state("late") == "running" and not source.health()["ready"]
                await plant.until(lambda: source.connect_failures >= 2, what="retries")
                lost = plant.messages("opcua.source_status")
                assert len(lost) == 1 and not lost[0]["connected"]  # said once, not at every retry
                assert "Connection" in lost[0]["reason"] or "Errno" in lost[0]["reason"]
                await asyncio_to_thread(server.start)
                await plant.until(lambda: plant.messages("opcua.data_change"), what="the first value")
                assert source.health()["ready"] and plant.messages("opcua.source_status")[-1]["connected"]

        kit.run(scenario())
    finally:
        server.close()


async def asyncio_to_thread(fn):
    import asyncio

    return await asyncio.to_thread(fn)


def test_an_unconvertible_value_is_counted_and_fails_the_check(kit, tmp_path, monkeypatch) -> None:
    import forge_opcua.components.source as source_module

    real = source_module.payload_of

    def picky(tag, value, endpoint):
        if value.Value is not None and value.Value.Value == 13:
            raise ValueError("unlucky")
        return real(tag, value, endpoint)

    monkeypatch.setattr(source_module, "payload_of", picky)

    async def scenario() -> None:
        async with kit.plc_server() as plc, kit.real_plant(
                tmp_path, {"src": kit.source(plc.endpoint, nodes=[kit.node("M1.FaultCode")])}) as plant:
            source = plant.component("src")
            await plant.until(lambda: source.connected and plant.messages("opcua.data_change"), what="a value")
            for value in (13, 14):
                await write(plc, "M1.FaultCode", value, ua.VariantType.Int32)
            await plant.until(lambda: plant.messages("opcua.data_change", lambda m: m["value"] == 14), what="14")
            assert source.report()["unconvertible"] == 1
            assert not plant.messages("opcua.data_change", lambda m: m["value"] == 13)
            check = source.checks()[0]
            assert not check.passed and "1 not convertible" in check.detail

    kit.run(scenario())
