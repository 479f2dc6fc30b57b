"""Machine death to DOWN in the distributed pasta plant, over a real Mosquitto.

A machine process (``forge run examples/pasta_plant --profile distributed --only machine-0``, MQTT
3.1.1, ``keepalive: 5``, a heartbeat every 5 s) beside the profile's ``machine_health`` process
(``forge.heartbeat_monitor``: phi accrual on the beats, and a received Last Will is a DOWN verdict)
is (a) SIGKILLed: the broker sees the socket close and publishes the Will at once; (b) frozen with
SIGSTOP: the socket stays open, the broker publishes the Will only after about 1.5 x keepalive of
silence (Mosquitto 2.0: keepalive*3/2 in whole seconds, on its one-second clock), and the monitor's
detector may see the missing beats first. Measured for each: the Will's arrival on
``forge/death/+`` and the monitor's ``forge.status`` DOWN on ``forge/status/+`` (what the blade
scheduler acts on, through the bridge). Limits: kill -> DOWN under 100 ms; freeze -> DOWN within
1.5 x keepalive plus the detector bound (phi's expected detection time after the last beat, plus the
monitor's evaluation period, for the beats the machine had sent since its start). Prints each
figure beside its limit as a ratio.

    .venv/bin/python benchmarks/bench_machine_death.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
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
from forge_mqtt.testing import MosquittoServer

from forge_core.tactics import PhiAccrualDetector, expected_detection_time
from forge_core.testing import PostgresServer

PLANT = Path(__file__).resolve().parents[1] / "examples" / "pasta_plant"
KEEPALIVE = 5.0  # the distributed profile's machines transport
BEAT = 5.0  # the machines' heartbeat_interval
PAUSE = 1.0  # the distributed profile's detector: phi with acceptable_heartbeat_pause 1 s
EVALUATE = min(BEAT / 4, 1.0)  # forge.heartbeat_monitor's default evaluate_every
KILL_LIMIT_MS = 100.0


def detector_bound(beats: int) -> float:
    """Seconds from the last beat to the monitor's DOWN for a source with ``beats`` beats of history
    (phi is slower while it knows few intervals): phi's expected detection plus one evaluation."""
    phi = PhiAccrualDetector(acceptable_heartbeat_pause=PAUSE, first_heartbeat_estimate=BEAT)
    return expected_detection_time(phi, BEAT, 0.1, samples=max(beats, 1)) + EVALUATE


class Watch:
    """Every death certificate and DOWN status on the broker, with its arrival time."""

    def __init__(self, host: str, port: int) -> None:
        self.events: list[tuple[float, str, dict]] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-deaths")
        self.client.on_message = self._on
        self.client.connect(host, port)
        self.client.subscribe([("forge/death/+", 1), ("forge/birth/+", 1), ("forge/status/+", 1), ("heartbeats", 1)])
        self.client.loop_start()

    def _on(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.events.append((time.perf_counter(), msg.topic, json.loads(msg.payload)))
            self.cond.notify_all()

    def wait(self, match: object, after: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for at, topic, body in self.events:
                    if at >= after and match(topic, body):  # type: ignore[operator]
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def beats(self, since: float, until: float) -> list[float]:
        return [at for at, topic, body in self.events if topic == "heartbeats" and since <= at <= until
                and body.get("machineId") == 0]


def is_will(topic: str, body: dict) -> bool:
    return topic.startswith("forge/death/pasta-machine-0-m")


def is_down(topic: str, body: dict) -> bool:
    return topic == "forge/status/0" and body.get("status") == "DOWN"


def is_up(topic: str, body: dict) -> bool:
    return topic == "forge/status/0" and body.get("status") == "UP"


def start(work: Path, env: dict[str, str], instance: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "forge_core.cli", "run", str(work), "--profile", "distributed",
                             "--only", instance, "--data-dir", str(work / instance)],
                            env={**env, "FORGE_INSTANCE": instance}, stdout=subprocess.DEVNULL,
                            stderr=open(work / f"{instance}.log", "ab"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-death-"))
    shutil.copy(PLANT / "plant.yaml", work / "plant.yaml")
    shutil.copytree(PLANT / "schemas", work / "schemas")
    kills: list[float] = []
    rows: list[tuple[float, float, float, float]] = []  # freeze: Will, DOWN, DOWN after the last beat, bound
    with MosquittoServer() as broker, PostgresServer() as pg:
        env = {**os.environ, "MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port),
               "FORGE_DATABASE_URL": pg.create_database("bench"),
               "KAFKA_BOOTSTRAP": "127.0.0.1:1",  # neither process connects Kafka
               "PASTA_COMMAND_SECRET": "bench-plant-key-0123456789"}  # the distributed profile requires one
        watch = Watch(broker.host, broker.port)
        health = start(work, env, "machine_health")
        try:
            for mode in ["kill"] * args.rounds + ["freeze"] * args.rounds:
                began = time.perf_counter()
                proc = start(work, env, "machine-0")
                if watch.wait(lambda t, b: t.startswith("forge/birth/pasta-machine-0-m"), began, 60) is None:
                    proc.kill()
                    raise SystemExit(f"machine-0 never connected; log {work / 'machine-0.log'}")
                # UP again at the monitor (recover_after beats), then a few beats more for phi to judge by
                if watch.wait(is_up, began, 60) is None:
                    raise SystemExit(f"machine_health never reported machine 0 UP; log {work / 'machine_health.log'}")
                time.sleep(2 * BEAT + 0.5 + (len(kills) + len(rows)) * 0.7 % BEAT)  # vary the phase vs the beat
                t0 = time.perf_counter()
                os.kill(proc.pid, signal.SIGKILL if mode == "kill" else signal.SIGSTOP)
                will = watch.wait(is_will, t0, 30)
                if will is None:
                    raise SystemExit(f"no death certificate within 30 s after {mode}")
                down = watch.wait(is_down, t0, 30)
                if down is None:
                    raise SystemExit(f"machine_health published no DOWN within 30 s after {mode}; log "
                                     f"{work / 'machine_health.log'}")
                if mode == "kill":
                    kills.append(down - t0)
                    print(f"  kill  : Will after {(will - t0) * 1000:7.1f} ms, DOWN after {(down - t0) * 1000:7.1f} ms",
                          flush=True)
                else:
                    beats = watch.beats(began, t0)
                    rows.append((will - t0, down - t0, down - beats[-1], detector_bound(len(beats))))
                    print(f"  freeze: Will after {will - t0:5.2f} s, DOWN after {down - t0:5.2f} s "
                          f"({rows[-1][2]:5.2f} s after the last of {len(beats)} beats; detector bound for that "
                          f"history {rows[-1][3]:5.2f} s)", flush=True)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                time.sleep(1.0)
        finally:
            health.kill()
            health.wait()
            watch.client.loop_stop()
    shutil.rmtree(work, ignore_errors=True)
    kill_ms = [k * 1000 for k in kills]
    wills, downs, after_beat, bounds = zip(*rows, strict=True)
    freeze_limit = 1.5 * KEEPALIVE + max(bounds)
    print(f"SIGKILL -> DOWN (Last Will at socket close, then machine_health): median "
          f"{statistics.median(kill_ms):.1f} ms, max {max(kill_ms):.1f} ms; limit {KILL_LIMIT_MS:g} ms: ratio "
          f"{max(kill_ms) / KILL_LIMIT_MS:.2f}")
    print(f"SIGSTOP (socket open, keepalive {KEEPALIVE:g} s, beats every {BEAT:g} s):")
    print(f"  Last Will from the broker   median {statistics.median(wills):5.2f} s, max {max(wills):5.2f} s")
    print(f"  DOWN from machine_health    median {statistics.median(downs):5.2f} s, max {max(downs):5.2f} s "
          f"(after the last beat: max {max(after_beat):.2f} s; detector bound up to {max(bounds):.2f} s)")
    print(f"  limit 1.5 x keepalive + detector bound = {freeze_limit:.2f} s: ratio {max(downs) / freeze_limit:.2f}")


if __name__ == "__main__":
    main()
