"""The distributed pasta plant end to end: real Mosquitto, Tansu (Kafka protocol) and PostgreSQL;
every component instance in its own OS process (``--profile distributed``); chaos in the parent
SIGKILLs machines and schedulers and revives them 10-30 s later. Nearly three minutes of it.

Results come from the merged ``--json`` summary (each child's report and checks, chaos's outage
times) and from a raw paho subscriber on the broker, which sees what the machines really send.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

paho = pytest.importorskip("paho.mqtt.client")
pytest.importorskip("forge_kafka")
from forge_mqtt.testing import MosquittoServer  # noqa: E402

from forge_core.tactics import verify_payload  # noqa: E402

PLANT = Path(__file__).resolve().parents[1]
RUN_SECONDS = 170


class Wiretap:
    """A plain MQTT 5 client on ``#``: bodies and user properties as the broker delivers them."""

    def __init__(self, host: str, port: int, password: str) -> None:
        self.messages: list[tuple[float, str, bytes, list[tuple[str, str]]]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="wiretap", protocol=paho.MQTTv5)
        self.client.username_pw_set("monitor", password)  # the broker's read-only role
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.subscribe("#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        props = getattr(msg.properties, "UserProperty", None) or []
        with self.lock:
            self.messages.append((time.time(), msg.topic, bytes(msg.payload), list(props)))

    def on(self, topic: str) -> list[tuple[float, dict[str, Any], list[tuple[str, str]]]]:
        with self.lock:
            return [(t, json.loads(body), props) for t, top, body, props in self.messages if top == topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.slow
@pytest.mark.servers
def test_distributed_plant_with_chaos(tmp_path, kafka_bootstrap, postgres_url):
    plant = tmp_path / "pasta"
    plant.mkdir()
    # the profile as shipped, but kills every 4-10 s instead of 5-15 s: chaos waits for the steady state
    # (20-60 s of process start-up at load), and the rest of the run must see a leader killed
    shipped = (PLANT / "plant.yaml").read_text()
    faster = shipped.replace("chaos: {transport: kafka, params: {enabled: true, revive_grace: 12}}",
                             "chaos: {transport: kafka, params: {enabled: true, revive_grace: 12, min_interval: 4.0, "
                             "max_interval: 10.0}}")
    assert faster != shipped, "the distributed profile's chaos entry moved: update this test"
    (plant / "plant.yaml").write_text(faster)
    shutil.copytree(PLANT / "schemas", plant / "schemas")
    # the profile as shipped: a broker with one user per role, the plant's ACL, anonymous refused
    passwords = {role: f"{role}-{os.getpid()}" for role in ("machine", "health", "bridge", "operator", "monitor")}
    broker = MosquittoServer(users=passwords, acl_file=PLANT / "security" / "mosquitto.acl",
                             base_dir=tmp_path / "mosquitto").start()
    env = {**os.environ, "MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port),
           "KAFKA_BOOTSTRAP": kafka_bootstrap, "FORGE_DATABASE_URL": postgres_url,
           **{f"PASTA_MQTT_{role.upper()}_PASSWORD": pw for role, pw in passwords.items()},
           "PASTA_COMMAND_SECRET": f"plant-key-{os.getpid()}-0123456789"}   # the profile requires it
    env.pop("FORGE_DISABLE_PLUGINS", None)
    tap = Wiretap(broker.host, broker.port, passwords["monitor"])
    try:
        result = subprocess.run(
            [sys.executable, "-m", "forge_core.cli", "run", str(plant), "--profile", "distributed", "--seed", "3",
             "--duration", f"{RUN_SECONDS}s", "--json"],
            env=env, capture_output=True, text=True, timeout=RUN_SECONDS + 120)
    finally:
        tap.close()
        broker.close()
    logs = plant / ".forge" / "processes"
    assert result.stdout.strip(), f"no summary; stderr:\n{result.stderr[-4000:]}\nlogs in {logs}"
    summary = json.loads(result.stdout)
    failed = [c for c in summary["checks"] if not c["passed"]]
    assert not failed and result.returncode == 0, (failed, summary["components"], result.stderr[-3000:])

    # every instance was its own OS process; chaos really killed some (SIGKILL = exit code -9)
    procs = summary["extra"]["processes"]
    assert set(procs) == {"machine-0", "machine-1", "machine-2", "scheduler-0", "scheduler-1", "sorting",
                          "production", "storage_monitor", "monitor", "bridge", "machine_health"}
    killed = {name for name, p in procs.items() if -9 in p["exit_codes"]}
    assert any(n.startswith("machine-") for n in killed) and any(n.startswith("scheduler-") for n in killed), procs
    revived = [n for n in killed if len(procs[n]["pids"]) > procs[n]["exit_codes"].count(-9)]
    assert revived, f"no killed process was started again: {procs}"

    # the invariants of the simulated plant, from the children's reports
    chaos = summary["reports"]["chaos"]
    assert chaos["machine_kills"] >= 1 and chaos["scheduler_kills"] >= 1, chaos
    rebalance, failover = chaos["rebalance"], chaos["failover"]
    assert rebalance.get("resolved", 0) >= 1, rebalance
    assert rebalance["max_s"] <= rebalance["bound_s"], rebalance
    # chaos attacked a steady plant (a leader, both blades cut), not one still starting its processes
    assert chaos["steady_after_s"] is not None, chaos
    assert chaos["leader_kills"] >= 1, f"no leader was killed with this seed: {chaos}"
    assert failover["resolved"] >= 1 and failover["max_s"] <= failover["bound_s"], failover  # successor within lease
    production = summary["reports"]["production"]
    assert production["stock_range"][0] >= 0 and production["stock"] == 200, production
    names = {c["name"] for c in summary["checks"]}
    for expected in ("stock is never negative", "stock settles at the target", "fleet: no command with a stale "
                     "epoch applied", "fleet: no machine assigned twice without a swap",
                     "blades rebalanced after every machine death",
                     "steady state (a leader, both blades cut) before the first kill",
                     "a successor leads within the lease bound after every leader death"):
        assert expected in names, f"check {expected!r} missing: {sorted(names)}"

    # machine_health turned every SIGKILLed machine's Last Will into a DOWN for its machineId
    down = {body["source"] for topic in {f"forge/status/{n}" for n in range(3)} for _, body, _ in tap.on(topic)
            if body["status"] == "DOWN"}
    machines_killed = {name.removeprefix("machine-") for name in killed if name.startswith("machine-")}
    assert machines_killed <= down, (machines_killed, down)

    # the machines speak plain MQTT JSON: no Forge headers, the original bodies
    beats = tap.on("heartbeats")
    assert beats, "no heartbeat on the broker"
    assert all(props == [] for _, _, props in beats), "a machine sent MQTT 5 user properties"
    assert {"title": "heartbeat", "machineId": 0} in [body for _, body, _ in beats]
    assert {body["machineId"] for _, body, _ in beats} == {0, 1, 2}
    # commands reach them through the bridge with the leader's epoch in the body; a deposed leader
    # never gets a command out after its successor's (epochs on the wire never go back)
    commands = sorted(tap.on("productionPlan/assignBlade") + tap.on("productionPlan/swapBlade"),
                      key=lambda item: item[0])
    assert commands, "no command reached the machines"
    epochs = [body["epoch"] for _, body, _ in commands]
    assert epochs == sorted(epochs), epochs
    # signed with the plant key through Kafka and the bridge (docs/security.md): every command verifies,
    # no machine dropped one as forged, and every epoch a machine accepted was granted by the lease
    key = env["PASTA_COMMAND_SECRET"].encode()
    assert all(verify_payload(key, "scheduler", body["epoch"], body) for _, body, _ in commands), commands[:3]
    machines = {n: r for n, r in summary["reports"].items() if n.startswith("machine-")}
    assert all(r["forged_dropped"] == 0 for r in machines.values()), machines
    [epoch_check] = [c for c in summary["checks"]
                     if c["name"] == "fleet: no command applied with an epoch no leader held"]
    assert epoch_check["passed"] and not epoch_check["detail"].startswith("not run"), epoch_check
