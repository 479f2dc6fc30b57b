"""The whole chain on real sockets: the simulated PLC (OPC UA on localhost) -> opcua.source -> gateway ->
sparkplug.edge_node -> Mosquitto -> sparkplug.host -> historian, from the plant's own plant.yaml
(embedded profile, SQLite in a temporary plant directory). Real clock: asyncua refuses a virtual one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from forge_mqtt.testing import MosquittoServer
from forge_opcua.settings import PlcSimulatorParams
from forge_opcua.simulator.model import PlcModel
from oee_line.storage.tables import events, telemetry

from forge_core import RealClock
from forge_core.runtime import Runtime, load_plant
from forge_core.testing.servers import find_free_port

PLANT = Path(__file__).resolve().parents[1] / "plant.yaml"
#: The plant's seed for the chain test. Unseeded, the PLC's machines are drawn anew each run, and about one run in 80
#: had a machine stop (idle, down or setup; exponential, means 60-300 s) before its third part and stay stopped past
#: the 120 s wait: CI's "not within 120s: three parts of every machine stored" (stop 29), with no fault in the chain.
#: With seed 8 no machine stops in its first 400 s (test_the_chain_seed_keeps_every_machine_running checks it).
CHAIN_SEED = 8


async def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def _plc_model(seed: int) -> PlcModel:
    """The model plc1 builds from plant.yaml for a plant seed (its ctx.random is Random(f"{seed}:plc1"))."""
    _, manifest = load_plant(PLANT, env={"OPCUA_PORT": "4840"})
    params = PlcSimulatorParams.model_validate(manifest.components["plc1"].params)
    return PlcModel(params.machines, params.timing, random.Random(f"{seed}:plc1"), 0.0,
                    cycle_times=params.cycle_times)


def test_the_chain_seed_keeps_every_machine_running() -> None:
    model = _plc_model(CHAIN_SEED)
    model.advance(400.0)
    assert {m: (x.state, x.totals.stops) for m, x in model.machines.items()} == {
        m: ("running", {"idle": 0, "down": 0, "setup": 0}) for m in model.machines}
    # seed 20 is a run the unseeded test could draw: M2 goes down after two parts and stays down past 200 s
    stopped = _plc_model(20)
    stopped.advance(200.0)
    assert (stopped.machines["M2"].total, stopped.machines["M2"].state) == (2, "down")


@pytest.mark.servers
@pytest.mark.slow
def test_plc_counters_reach_storage_through_opcua_and_sparkplug(tmp_path: Path, mosquitto_server: MosquittoServer,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="forge")  # a failure's log shows the chain's milestones (connect, first data)
    shutil.copy(PLANT, tmp_path / "plant.yaml")
    env = {"MQTT_HOST": mosquitto_server.host, "MQTT_PORT": str(mosquitto_server.port),
           "OPCUA_PORT": str(find_free_port()), "OEE_DB_URL": f"sqlite:///{tmp_path}/oee.db"}
    plugins, manifest = load_plant(tmp_path / "plant.yaml", env=env)
    runtime = Runtime(manifest, plugins, clock=RealClock(), serve_health=False, seed=CHAIN_SEED)

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
            try:
                await _until(lambda: all((stored_total(m) or 0) >= 3 for m in model.machines), 120,
                             "three parts of every machine stored")
            except AssertionError as exc:  # say whether the PLC made them (a stopped machine) or the chain lost them
                stored = {m: stored_total(m) for m in model.machines}
                raise AssertionError(f"{exc}; stored TotalCount {stored}; the PLC's machines {model.totals()}; "
                                     f"source {runtime.supervisors['source'].instance.report()}") from None
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
@pytest.mark.parametrize("outage", ["stop", "crash"])
def test_no_part_count_is_lost_across_a_broker_outage(tmp_path: Path, outage: str) -> None:
    # every part raises TotalCount by one and the source samples every 250 ms (cycles are 1.5-3 s), so the stored
    # TotalCount values of a machine must be every integer from the first to the last: a gap is a lost sample.
    # stop: SIGTERM, no persistence (Wills sent, nothing retained after). crash: SIGKILL of a broker with
    # persistence, as the distributed profile's mosquitto.conf has: no Wills, and the host's STATE online of before
    # the crash is still the retained one when the broker is back
    broker = MosquittoServer(persistence=outage == "crash").start()
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
            edge, host = runtime.supervisors["edge"].instance, runtime.supervisors["host"].instance
            assert plc is not None and historian is not None and edge is not None and host is not None
            engine, model = historian.store.engine, plc.plc.model

            def totals(machine: str) -> list[int]:
                with engine.connect() as conn:
                    return [int(v) for v in conn.execute(sa.select(telemetry.c.value).where(
                        telemetry.c.machine_id == machine, telemetry.c.metric == "TotalCount")
                        .order_by(telemetry.c.time)).scalars()]

            # a machine may sit in setup for minutes (the model's means): wait for parts of the line, not of each
            await _until(lambda: sum(len(totals(m)) for m in model.machines) >= 4, 120, "parts stored")
            await asyncio.to_thread(broker.stop if outage == "stop" else broker.kill)
            during = {m: model.machines[m].total for m in model.machines}
            await asyncio.sleep(12)
            made = {m: model.machines[m].total - during[m] for m in model.machines}
            await asyncio.to_thread(broker.start)
            after = {m: model.machines[m].total for m in model.machines}
            assert sum(made.values()) > 0
            # The births of the new session carry each machine's newest counts and come before the replay of what
            # was stored, so "the newest total is stored" does not mean the replay is: wait for the outbox to
            # drain, then for the historian to have stored what the host put on the bus (a gap that stays is a
            # lost sample). The first version of this test checked right after the births and took the replay
            # still in flight for lost parts.
            await _until(lambda: edge.in_session and edge.outbox.depth == 0 and edge.stats["replayed"] > 0, 120,
                         "the edge node's outbox replayed in a new session")

            def gaps(m: str) -> list[int]:
                stored = totals(m)
                return sorted(set(range(stored[0], stored[-1] + 1)) - set(stored)) if stored else []

            with contextlib.suppress(AssertionError):
                await _until(lambda: all(not gaps(m) and max(totals(m), default=0) >= after[m]
                                         for m in model.machines), 30, "every part count stored")
            for m in model.machines:
                stored = totals(m)
                assert stored == sorted(stored), f"{m}: order"
                assert max(stored, default=0) >= after[m], f"{m}: {stored} stored, the PLC counted {after[m]}"
                assert not gaps(m), f"{m}: part counts {gaps(m)} lost; outage from total {during[m]} to {after[m]}"
            # what was stored during the outage reached the host as historical DATA, and no seq gap went unrepaired
            assert host.stats["historical"] >= edge.stats["replayed"] > 0
            assert host.stats["seq_gaps"] == 0 or host.stats["rebirth_requests"] > 0
        finally:
            await runtime.stop()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 400))
    finally:
        broker.close()
