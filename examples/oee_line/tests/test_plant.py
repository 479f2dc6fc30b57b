"""The whole chain on real sockets: the simulated PLC (OPC UA on localhost) -> opcua.source -> gateway ->
sparkplug.edge_node -> Mosquitto -> sparkplug.host -> historian, from the plant's own plant.yaml
(embedded profile, SQLite in a temporary plant directory). Real clock: asyncua refuses a virtual one."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from forge_mqtt.testing import MosquittoServer
from oee_line.storage.tables import events, telemetry

from forge_core import RealClock
from forge_core.runtime import Runtime, load_plant
from forge_core.testing.servers import find_free_port

PLANT = Path(__file__).resolve().parents[1] / "plant.yaml"


async def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


@pytest.mark.servers
@pytest.mark.slow
def test_plc_counters_reach_storage_through_opcua_and_sparkplug(tmp_path: Path,
                                                                mosquitto_server: MosquittoServer) -> None:
    shutil.copy(PLANT, tmp_path / "plant.yaml")
    env = {"MQTT_HOST": mosquitto_server.host, "MQTT_PORT": str(mosquitto_server.port),
           "OPCUA_PORT": str(find_free_port()), "OEE_DB_URL": f"sqlite:///{tmp_path}/oee.db"}
    plugins, manifest = load_plant(tmp_path / "plant.yaml", env=env)
    runtime = Runtime(manifest, plugins, clock=RealClock(), serve_health=False)

    async def scenario() -> None:
        await runtime.start()
        try:
            plc = runtime.supervisors["plc1"].instance
            historian = runtime.supervisors["historian"].instance
            assert plc is not None and historian is not None
            engine = historian.store.engine

            def stored_total(machine: str) -> float | None:
                with engine.connect() as conn:
                    return conn.execute(sa.select(sa.func.max(telemetry.c.value)).where(
                        telemetry.c.machine_id == machine, telemetry.c.metric == "TotalCount")).scalar()

            model = plc.plc.model
            await _until(lambda: all((stored_total(m) or 0) >= 3 for m in model.machines), 120,
                         "three parts of every machine stored")
            # what the PLC counted is what was stored, for a machine whose count stands still a moment
            await _until(lambda: any(stored_total(m) == model.machines[m].total for m in model.machines), 60,
                         "a stored total equal to the PLC's")
            with engine.connect() as conn:
                machines = set(conn.execute(sa.select(events.c.machine_id).distinct()).scalars())
            assert machines == set(model.machines)
        finally:
            await runtime.stop()

    asyncio.run(asyncio.wait_for(scenario(), 300))


@pytest.mark.servers
@pytest.mark.slow
@pytest.mark.xfail(reason="found by this test, not yet fixed: the parts made during the outage are replayed, but "
                          "the 1-3 made in the seconds right after Mosquitto came back are lost (e.g. totals 6, 7, 8 "
                          "of M1 after an outage from 2 to 7); to be diagnosed between sparkplug.edge_node's "
                          "reconnect/STATE wait and sparkplug.host's resubscription", strict=False)
def test_no_part_count_is_lost_across_a_broker_outage(tmp_path: Path) -> None:
    # every part raises TotalCount by one and the source samples every 250 ms (cycles are 1.5-3 s), so the stored
    # TotalCount values of a machine must be every integer from the first to the last: a gap is a lost sample
    broker = MosquittoServer().start()
    shutil.copy(PLANT, tmp_path / "plant.yaml")
    env = {"MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port), "OPCUA_PORT": str(find_free_port()),
           "OEE_DB_URL": f"sqlite:///{tmp_path}/oee.db"}
    plugins, manifest = load_plant(tmp_path / "plant.yaml", env=env)
    runtime = Runtime(manifest, plugins, clock=RealClock(), serve_health=False)

    async def scenario() -> None:
        await runtime.start()
        try:
            plc = runtime.supervisors["plc1"].instance
            historian = runtime.supervisors["historian"].instance
            assert plc is not None and historian is not None
            engine, model = historian.store.engine, plc.plc.model

            def totals(machine: str) -> list[int]:
                with engine.connect() as conn:
                    return [int(v) for v in conn.execute(sa.select(telemetry.c.value).where(
                        telemetry.c.machine_id == machine, telemetry.c.metric == "TotalCount")
                        .order_by(telemetry.c.time)).scalars()]

            # a machine may sit in setup for minutes (the model's means): wait for parts of the line, not of each
            await _until(lambda: sum(len(totals(m)) for m in model.machines) >= 4, 120, "parts stored")
            await asyncio.to_thread(broker.stop)
            during = {m: model.machines[m].total for m in model.machines}
            await asyncio.sleep(12)
            made = {m: model.machines[m].total - during[m] for m in model.machines}
            await asyncio.to_thread(broker.start)
            after = {m: model.machines[m].total for m in model.machines}
            await _until(lambda: all(max(totals(m), default=0) >= after[m] for m in model.machines), 120,
                         "the outage's parts replayed and stored")
            assert sum(made.values()) > 0
            for m in model.machines:
                stored = totals(m)
                if not stored:
                    continue
                assert stored == sorted(stored), f"{m}: order"
                assert set(range(stored[0], stored[-1] + 1)) <= set(stored), (
                    f"{m}: part counts {sorted(set(range(stored[0], stored[-1] + 1)) - set(stored))} lost; "
                    f"outage from total {during[m]} to {after[m]}")
        finally:
            await runtime.stop()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 400))
    finally:
        broker.close()
