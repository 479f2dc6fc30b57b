"""The simulated PLC's server: its address space as documented, values and timestamps from the model,
diagnostics that count the server's subscriptions, and the same thing in a process of its own."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from asyncua import Client, ua

from forge_opcua import PlcSimulatorParams
from forge_opcua.client.nodes import resolve_node_id
from forge_opcua.simulator.server import PlcServer, node_id_text
from forge_opcua.testing import PlcSimulatorServer

pytestmark = pytest.mark.servers

NS = "urn:forge:opcua:plc-simulator"
FAST = {"ideal_cycle_time": 0.05, "mean_running": 1.0, "mean_idle": 0.3, "mean_down": 0.3, "mean_setup": 0.3}


async def node(client: Client, name: str):
    """A simulator node by name (``M1.State``), its namespace found by URI."""
    return client.get_node(resolve_node_id(node_id_text(NS, name), await client.get_namespace_array()))


async def browse_names(client: Client, name: str) -> list[str]:
    children = await (await node(client, name)).get_children()
    return sorted([(await child.read_browse_name()).Name for child in children])


def test_address_space_values_and_diagnostics() -> None:
    async def scenario() -> None:
        params = PlcSimulatorParams.load({"port": 0, "machines": ["M1", "M2"], "timing": FAST,
                                          "cycle_times": {"M2": 0.1}})
        plc = PlcServer(params, random.Random(1), time.time())
        await plc.start()
        try:
            async with Client(plc.endpoint) as client:
                assert await browse_names(client, "Machines") == ["M1", "M2"]
                assert await browse_names(client, "M1") == [
                    "FaultCode", "GoodCount", "IdealCycleTime", "State", "StateCode", "TotalCount"]
                assert await browse_names(client, "Diagnostics") == [
                    "MonitoredItems", "Ramp", "Subscriptions"]
                cycle = await (await node(client, "M2.IdealCycleTime")).read_value()
                assert cycle == 0.1
                sub = await client.create_subscription(50, None)
                await sub.subscribe_data_change([await node(client, name) for name in (
                    "M1.TotalCount", "M1.State")])
                for _ in range(20):
                    await plc.update(time.time())
                    await asyncio.sleep(0.05)
                total = await node(client, "M1.TotalCount")
                value = await total.read_data_value()
                assert value.Value.Value == plc.model.machines["M1"].total > 0
                assert value.Value.VariantType == ua.VariantType.UInt32
                assert abs(value.SourceTimestamp.timestamp() - plc.model.machines["M1"].last_part_at) < 1e-3
                state = await (await node(client, "M1.State")).read_value()
                assert state == plc.model.machines["M1"].state
                assert await (await node(client, "Diagnostics.Subscriptions")).read_value() == 1
                assert await (await node(client, "Diagnostics.MonitoredItems")).read_value() == 2
                assert next(iter(plc.subscriptions().values()))["monitored_items"] == 2
        finally:
            await plc.stop()
        report = plc.report()
        assert report["machines"]["M1"]["total"] == plc.model.machines["M1"].total

    asyncio.run(scenario())


def test_simulator_process_stops_and_starts_on_the_same_port() -> None:
    async def read(server: PlcSimulatorServer, name: str) -> object:
        async with Client(server.endpoint) as client:
            return await (await node(client, name)).read_value()

    with PlcSimulatorServer(params={"machines": ["A", "B"]}) as server:
        assert asyncio.run(read(server, "B.IdealCycleTime")) == 1.0
        port = server.port
        server.stop()
        with pytest.raises((OSError, asyncio.TimeoutError)):
            asyncio.run(read(server, "A.State"))
        server.start()
        assert server.port == port
        assert asyncio.run(read(server, "A.State")) in ("running", "idle", "down", "setup")


def test_first_values_carry_the_models_time_not_the_servers_start() -> None:
    # The model starts when the component is made, the server some time later (asyncua's init takes seconds under
    # load). A part the model made meanwhile is stamped when it was made; the count before it (0) must not be
    # stamped later, with asyncua's clock at add_variable, or the stored TotalCounts read by time go 1, 0, 2.
    async def scenario() -> None:
        params = PlcSimulatorParams.load({"port": 0, "machines": ["M1"], "timing": FAST, "cycle_times": {"M1": 1.0}})
        start = time.time() - 30.0  # as if the server had taken 30 s to start: parts were due meanwhile
        plc = PlcServer(params, random.Random(1), start)
        await plc.start()
        try:
            async with Client(plc.endpoint) as client:
                total, state = await node(client, "M1.TotalCount"), await node(client, "M1.State")
                first = await total.read_data_value()
                assert first.Value.Value == 0
                assert abs(first.SourceTimestamp.timestamp() - start) < 1e-3
                assert abs((await state.read_data_value()).SourceTimestamp.timestamp() - start) < 1e-3
                await plc.update(time.time())
                after = await total.read_data_value()
                assert after.Value.Value == plc.model.machines["M1"].total > 0
                assert after.SourceTimestamp.timestamp() > first.SourceTimestamp.timestamp()
        finally:
            await plc.stop()

    asyncio.run(scenario())
