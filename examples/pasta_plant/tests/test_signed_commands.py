"""Signed commands on real Mosquitto with the plant's ACL (issue 11 §1): an attacker holding the
bridge's password (the only identity that may publish commands) but not the plant key cannot
command a machine nor lock it out of the real leader; without credentials the broker refuses them.

The plant here is the real thing, small: one ``pasta.cutting_machine`` on plain MQTT 3.1.1 as the
``machine`` user, one ``sched.blade_scheduler`` on MQTT 5 as the ``bridge`` user (standing in for
the bridge that carries its commands in the distributed profile), the monitor (grant history), all
in one runtime on a real clock; the forger is a plain paho client.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

paho = pytest.importorskip("paho.mqtt.client")
from forge_mqtt.testing import MosquittoServer  # noqa: E402

from forge_core.clock import RealClock  # noqa: E402
from forge_core.runtime import Runtime, load_plant  # noqa: E402

pytestmark = pytest.mark.servers

PLANT = Path(__file__).resolve().parents[1]
ACL = PLANT / "security" / "mosquitto.acl"
USERS = {role: f"{role}-pw-0123" for role in ("machine", "bridge", "monitor")}
KEY = "plant-key-for-the-test-0123456789"

MANIFEST = """
version: 1
plant: {{name: signed_commands}}
plugins: [pasta, sched, mqtt]
schemas: [schemas]
transports:
  bus: {{type: memory}}
  machines:
    type: mqtt
    settings: {{host: "{host}", port: {port}, protocol: "3.1.1", client_id: pasta-machine-0-m, keepalive: 5,
               username: machine, password: "${{env:TEST_MACHINE_PASSWORD}}"}}
  commander:
    type: mqtt
    settings: {{host: "{host}", port: {port}, client_id: pasta-sched-test, keepalive: 5,
               username: bridge, password: "${{env:TEST_BRIDGE_PASSWORD}}"}}
default_transport: bus
bindings:
  - {{topic: heartbeats, type_field: title, type_map: {{heartbeat: sched.machine_heartbeat}}, source_field: machineId,
     key_field: machineId}}
  - {{topic: productionPlan/assignBlade, type: sched.assign_blade, key_field: machineId}}
  - {{topic: productionPlan/swapBlade, type: sched.swap_blade, key_field: machineId}}
  - {{topic: productionPlan/bladeSwapped, type: sched.blade_swapped, source_field: machineId, key_field: machineId}}
  - {{topic: updateManager/killMachine, type: pasta.kill_machine, key_field: machineId}}
components:
  machine:
    type: pasta.cutting_machine
    transport: machines
    params: {{heartbeat_interval: 0.5, swap_time: 0.2, command_secret: "${{env:PASTA_COMMAND_SECRET}}"}}
  scheduler:
    type: sched.blade_scheduler
    transport: commander
    params:
      discovery_time: 3.0
      assign_interval: 0.5
      health_check_interval: 1.0
      command_secret: "${{env:PASTA_COMMAND_SECRET}}"
      topics: {{heartbeats: heartbeats, assign: productionPlan/assignBlade, swap: productionPlan/swapBlade,
               swapped: productionPlan/bladeSwapped}}
  monitor:
    type: pasta.monitor
    params: {{render: never, grants_every: 0.5}}
tactics:
  leader: {{use: memory, ttl: 1.0, renew_every: 0.3, retry_every: 0.2}}
  state: {{use: memory}}
storage: {{migrate_on_start: false}}
"""


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    with MosquittoServer(users=USERS, acl_file=ACL, base_dir=tmp_path_factory.mktemp("broker")) as server:
        yield server


class Forger:
    """A plain MQTT 5 client; ``publish`` returns the PUBACK reason (0x87: not authorized)."""

    def __init__(self, broker: MosquittoServer, user: str | None, password: str | None) -> None:
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"forger-{user}", protocol=paho.MQTTv5)
        if user is not None:
            self.c.username_pw_set(user, password)
        self.connack: int | None = None
        self.acks: dict[int, int] = {}
        self.c.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc.value)
        self.c.on_publish = lambda c, u, mid, rc, p: self.acks.__setitem__(mid, rc.value)
        self.c.connect(broker.host, broker.port, keepalive=10)
        self.c.loop_start()
        deadline = time.monotonic() + 5
        while self.connack is None and time.monotonic() < deadline:
            time.sleep(0.01)

    def publish(self, topic: str, body: dict[str, Any]) -> int:
        mid = self.c.publish(topic, json.dumps(body).encode(), qos=1).mid
        deadline = time.monotonic() + 5
        while mid not in self.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acks[mid]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def plant_dir(tmp_path: Path, broker: MosquittoServer) -> Path:
    (tmp_path / "plant.yaml").write_text(textwrap.dedent(MANIFEST.format(host=broker.host, port=broker.port)))
    shutil.copytree(PLANT / "schemas", tmp_path / "schemas")
    return tmp_path


FORGED = [("productionPlan/swapBlade", {"title": "SwapBlade", "machineId": 0, "bladeType": "B", "epoch": 10**12}),
          ("productionPlan/assignBlade", {"title": "AssignBlade", "machineId": 0, "bladeType": "B", "epoch": 10**12}),
          ("productionPlan/assignBlade", {"title": "AssignBlade", "machineId": 0, "bladeType": "B", "epoch": 10**12,
                                          "signature": "0" * 64})]


def test_a_forger_with_the_bridge_password_but_no_key_cannot_command_a_machine(tmp_path, broker) -> None:
    env = {"TEST_MACHINE_PASSWORD": USERS["machine"], "TEST_BRIDGE_PASSWORD": USERS["bridge"],
           "PASTA_COMMAND_SECRET": KEY}
    plugins, manifest = load_plant(plant_dir(tmp_path, broker), env=env)

    async def main() -> Any:
        runtime = Runtime(manifest, plugins, clock=RealClock(), serve_health=False)
        await runtime.start()
        try:
            machine = runtime.supervisors["machine"].instance
            await asyncio.sleep(1.0)  # connected, beating, the scheduler still discovering (3 s)
            anonymous = Forger(broker, None, None)
            insider = Forger(broker, "bridge", USERS["bridge"])
            try:
                assert anonymous.connack not in (None, 0), "the broker refuses a forger without credentials"
                for topic, body in FORGED:
                    assert insider.publish(topic, body) < 0x80, "the bridge's password may publish commands"
                deadline = time.monotonic() + 5
                while machine.ctx.fence.forged < len(FORGED) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert machine.ctx.fence.forged == len(FORGED), "every forgery reached the machine and was counted"
                assert machine.state == "WAITING_FOR_ASSIGNMENT" and machine.blade is None, "none obeyed"
                assert machine.ctx.fence.newest == {}, "the runaway epoch did not move the fence"
                # the true scheduler assigns after its discovery, with its signed, much lower epoch
                deadline = time.monotonic() + 10
                while machine.state != "WORKING" and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert machine.state == "WORKING", "the real leader's signed AssignBlade was obeyed"
                leader = runtime.supervisors["scheduler"].instance
                assert machine.ctx.fence.newest == {"scheduler": leader.elector.epoch}
                # a forged swap to the other blade afterwards is dropped as well (one machine: no real swap)
                blade, fence = machine.blade, dict(machine.ctx.fence.newest)
                other = "A" if blade == "B" else "B"
                assert insider.publish(FORGED[0][0], {**FORGED[0][1], "bladeType": other}) < 0x80
                await asyncio.sleep(1.0)
                assert (machine.blade, machine.record.swaps, machine.ctx.fence.newest) == (blade, 0, fence)
            finally:
                anonymous.close()
                insider.close()
        finally:
            summary = await runtime.stop()
        return summary

    summary = asyncio.run(main())
    report = summary.reports["machine"]
    assert report["forged_dropped"] == len(FORGED) + 1
    assert report["accepted_epochs"] == summary.reports["monitor"]["granted_epochs"][-1:]
    check = next(c for c in summary.checks if c.name == "fleet: no command applied with an epoch no leader held")
    assert check.passed and not check.detail.startswith("not run"), check
