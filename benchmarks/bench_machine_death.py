"""Machine death to DOWN in the distributed pasta plant, over a real Mosquitto.

A machine process (``forge run examples/pasta_plant --profile distributed --only machine-0``, MQTT
3.1.1, ``keepalive: 5``) is (a) SIGKILLed: the broker sees the socket close and publishes its Last
Will at once; (b) frozen with SIGSTOP: the socket stays open and the broker publishes the Will
after 1.5 x keepalive of silence, checked on Mosquitto's whole-second clock (+1 s). DOWN is the
death certificate's arrival at a subscriber on ``forge/death/+`` — what the blade scheduler acts
on (through the bridge). Prints each figure beside its limit as a ratio.

    .venv/bin/python benchmarks/bench_machine_death.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from forge_core.testing.servers import MosquittoServer, PostgresServer

PLANT = Path(__file__).resolve().parents[1] / "examples" / "pasta_plant"
KEEPALIVE = 5.0
KILL_LIMIT_MS = 100.0
FREEZE_LIMIT_S = 1.5 * KEEPALIVE + 1.0  # Mosquitto checks keepalives on a whole-second clock


class Certificates:
    def __init__(self, host: str, port: int) -> None:
        self.events: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-deaths")
        self.client.on_message = self._on
        self.client.connect(host, port)
        self.client.subscribe([("forge/death/+", 1), ("forge/birth/+", 1)])
        self.client.loop_start()

    def _on(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.events.append((time.perf_counter(), msg.topic))
            self.cond.notify_all()

    def wait(self, prefix: str, after: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for at, topic in self.events:
                    if at >= after and topic.startswith(prefix):
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-death-"))
    shutil.copy(PLANT / "plant.yaml", work / "plant.yaml")
    shutil.copytree(PLANT / "schemas", work / "schemas")
    kills: list[float] = []
    freezes: list[float] = []
    with MosquittoServer() as broker, PostgresServer() as pg:
        env = {**os.environ, "MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port),
               "FORGE_DATABASE_URL": pg.create_database("bench"), "FORGE_INSTANCE": "machine-0",
               "KAFKA_BOOTSTRAP": "127.0.0.1:1"}  # a machine process never connects Kafka
        certs = Certificates(broker.host, broker.port)
        for mode in ["kill"] * args.rounds + ["freeze"] * args.rounds:
            began = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "forge_core.cli", "run", str(work), "--profile",
                                     "distributed", "--only", "machine-0", "--data-dir", str(work / "m0")],
                                    env=env, stdout=subprocess.DEVNULL, stderr=open(work / "machine.log", "ab"))  # noqa: SIM115
            if certs.wait("forge/birth/pasta-machine-0-m", began, 60) is None:
                proc.kill()
                raise SystemExit(f"machine-0 never connected; log {work / 'machine.log'}")
            time.sleep(1.0)
            t0 = time.perf_counter()
            os.kill(proc.pid, signal.SIGKILL if mode == "kill" else signal.SIGSTOP)
            at = certs.wait("forge/death/pasta-machine-0-m", t0, 30)
            if at is None:
                raise SystemExit(f"no death certificate within 30 s after {mode}")
            (kills if mode == "kill" else freezes).append(at - t0)
            print(f"  {mode:6s}: death certificate after {(at - t0) * 1000:8.1f} ms", flush=True)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        certs.client.loop_stop()
    shutil.rmtree(work, ignore_errors=True)
    kill_ms = [k * 1000 for k in kills]
    print(f"SIGKILL (Last Will at socket close): median {statistics.median(kill_ms):.1f} ms, max {max(kill_ms):.1f} "
          f"ms; limit {KILL_LIMIT_MS:g} ms: ratio {max(kill_ms) / KILL_LIMIT_MS:.2f}")
    print(f"SIGSTOP (socket open, keepalive {KEEPALIVE:g} s): median {statistics.median(freezes):.2f} s, max "
          f"{max(freezes):.2f} s; limit 1.5 x keepalive + 1 s = {FREEZE_LIMIT_S:g} s: ratio "
          f"{max(freezes) / FREEZE_LIMIT_S:.2f}")


if __name__ == "__main__":
    main()
