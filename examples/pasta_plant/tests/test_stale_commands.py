"""Issue 11 §5: a command must not outlive its purpose.

Two consecutive distributed runs failed "assigned twice": every MQTT identity keeps a persistent
session, so commands the bridge published late in run 1 (while a machine was down, or after it
stopped) stayed queued in the machines' sessions and reached the fresh machines of run 2 — signed
correctly, with run 1's epoch, and a fresh machine has no fence yet — which obeyed them; then run
2's leader assigned them again. The distributed profile now gives the command topics an MQTT 5
Message Expiry Interval (``message_expiry_by_topic`` on the bridge's transport), no longer than
the time after which the scheduler stops counting on a command (``confirm_timeout``).

The drill is the real profile's transports on real Mosquitto with the plant's ACL and passwords:
machine-0 as the distributed profile runs it (``--only machine-0``), its session left behind by a
first life, and the bridge's transport built from the profile's settings.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from forge_mqtt import MqttSettings, MqttTransport
from forge_mqtt.testing import MosquittoServer
from forge_sched.settings import BladeSchedulerParams
from pasta_plant.components.machine import CuttingMachine

from forge_core import Envelope, RealClock
from forge_core.runtime import Runtime, load_plant
from forge_core.tactics import sign_payload

PLANT = Path(__file__).resolve().parents[1]
ACL = PLANT / "security" / "mosquitto.acl"
USERS = {role: f"{role}-pw-{uuid.uuid4().hex[:6]}" for role in ("machine", "health", "bridge", "monitor")}
KEY = "plant-key-for-the-test-0123456789"
COMMANDS = ("productionPlan/assignBlade", "productionPlan/swapBlade")
#: How long before the next run the last command of a run was issued (the scheduler's clock): within
#: a 20 s expiry it is queued with 2 s left, and expires in the session while the machine is away.
STALE_AGE = 18.0


def _env(broker: MosquittoServer | None = None) -> dict[str, str]:
    env = {"FORGE_INSTANCE": "machine-0", "PASTA_COMMAND_SECRET": KEY,
           **{f"PASTA_MQTT_{role.upper()}_PASSWORD": pw for role, pw in USERS.items()}}
    if broker is not None:
        env |= {"MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port)}
    return env


def test_the_distributed_profile_s_commands_expire_before_the_scheduler_gives_up_on_them() -> None:
    """The bridge's command publishes carry an expiry, and no longer than ``confirm_timeout``: after
    it the scheduler retries an assignment, and a late delivery of the old one is a double."""
    _, manifest = load_plant(PLANT, profile="distributed", env=_env())
    bridge = MqttSettings.load(manifest.transports["mqtt"].settings, where="transports.mqtt.settings")
    scheduler = BladeSchedulerParams.load(manifest.components["scheduler"].params or {},
                                          where="components.scheduler.params")
    for topic in COMMANDS:
        expiry = bridge.expiry_for(topic)
        assert expiry is not None, f"{topic}: a command queued for a machine that is away never expires"
        assert expiry <= scheduler.confirm_timeout, (topic, expiry, scheduler.confirm_timeout)


def _command(epoch: int, blade: str, issued: float) -> Envelope:
    body = sign_payload(KEY.encode(), "scheduler", epoch, {"title": "AssignBlade", "machineId": 0,
                                                           "bladeType": blade, "epoch": epoch})
    return Envelope("sched.assign_blade", body, f"scheduler-{epoch}", uuid.uuid4().hex, issued, "0", 1,
                    {"forgeepoch": str(epoch), "forgelease": "scheduler"})


async def _ignore(topic: str, message: Any) -> None:
    return None


async def _two_runs(plant: Path, env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    plugins, manifest = load_plant(plant, profile="distributed", env=env)

    # Run 1's machine-0, SIGKILLed by chaos and not back before the run ended: its session keeps its
    # subscriptions (a clean stop would unsubscribe them). Its transport, closed without unsubscribing.
    killed = MqttTransport("machines", data_dir=tmp_path / "run1", **manifest.transports["machines"].settings)
    await killed.connect()
    for topic in COMMANDS:
        await killed.subscribe(topic, _ignore)
    await killed.close()
    bridge = MqttTransport("mqtt", data_dir=tmp_path / "bridge", **manifest.transports["mqtt"].settings)
    await bridge.connect()
    try:
        # run 1's leader's last command, issued STALE_AGE s before run 2 and queued for the machine's session
        await bridge.publish(COMMANDS[0], _command(1, "A", time.time() - STALE_AGE))
        await asyncio.sleep(3.0)  # between the runs
        # run 2's leader (a newer epoch) assigns the fresh machine; queued too, it is still starting
        await bridge.publish(COMMANDS[0], _command(2, "B", time.time()))
        deadline = time.monotonic() + 5
        while bridge.health().stats["inflight"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # run 2's machine-0, as `forge run --profile distributed --only machine-0` runs it
        second = Runtime(manifest, plugins, clock=RealClock(), only=["machine-0"], serve_health=False,
                         data_dir=tmp_path / "run2")
        await second.start()
        machine = second.supervisors["machine-0"].instance
        assert isinstance(machine, CuttingMachine), machine
        deadline = time.monotonic() + 10
        while machine.record.assigns + len(machine.record.double_assigns) < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # anything else the session held has arrived by now
        result = {"report": machine.report(), "doubles": list(machine.record.double_assigns),
                  "checks": {c.name: c.passed for c in machine.checks()}, "bridge": dict(bridge.health().stats),
                  "machines": {n: dict(t.health().stats) for n, t in second.transports.items()}}
        await second.stop()
        return result
    finally:
        await bridge.close()


@pytest.mark.servers
def test_a_command_queued_for_a_machine_s_session_does_not_reach_the_next_run(tmp_path: Path) -> None:
    plant = tmp_path / "pasta"
    plant.mkdir()
    shutil.copy(PLANT / "plant.yaml", plant / "plant.yaml")
    shutil.copytree(PLANT / "schemas", plant / "schemas")
    env = {**_env(), "FORGE_DATABASE_URL": f"sqlite:///{tmp_path}/forge.db"}  # a machine needs no PostgreSQL
    with MosquittoServer(users=USERS, acl_file=ACL, base_dir=tmp_path / "broker") as broker:
        result = asyncio.run(_two_runs(plant, env | _env(broker), tmp_path))
    report = result["report"]
    assert result["doubles"] == [], result  # before: "AssignBlade B (epoch 2) while WORKING with A"
    assert all(result["checks"].values()), result
    assert report["accepted_epochs"] == [2] and report["blade"] == "B" and report["assigns"] == 1, result
