"""forge_opcua.testing: the shared simulated PLC fixture, and a private one that stops cleanly on SIGTERM
with its ground truth in its log."""

from __future__ import annotations

import asyncio
import json

import pytest
from asyncua import Client

from forge_opcua import resolve_node_id
from forge_opcua.testing import PlcSimulatorServer

pytestmark = pytest.mark.servers


async def read(server: PlcSimulatorServer, *names: str) -> list[object]:
    async with Client(server.endpoint) as client:
        namespaces = await client.get_namespace_array()
        return [await client.get_node(resolve_node_id(server.node(name), namespaces)).read_value() for name in names]


def test_the_shared_plc_serves_three_machines(opcua_plc) -> None:
    assert opcua_plc.endpoint == f"opc.tcp://127.0.0.1:{opcua_plc.port}/forge/plc"
    assert opcua_plc.node("M3.State") == "nsu=urn:forge:opcua:plc-simulator;s=M3.State"
    cycle, state = asyncio.run(read(opcua_plc, "M3.IdealCycleTime", "M1.State"))
    assert cycle == 1.0 and state in ("running", "idle", "down", "setup")


def test_sigterm_stops_cleanly_with_the_ground_truth_in_the_log() -> None:
    with PlcSimulatorServer(params={"machines": ["A"], "timing": {"ideal_cycle_time": 0.05}}, seed=3) as server:
        total = asyncio.run(read(server, "A.TotalCount"))[0]
        server.stop()
        report = json.loads(server.log_tail(1))
        assert report["endpoint"] == server.endpoint
        assert report["machines"]["A"]["total"] >= total
