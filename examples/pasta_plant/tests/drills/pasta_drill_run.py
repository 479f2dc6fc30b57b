"""One scripted drill on the distributed pasta plant: the servers, ``forge run --profile distributed``
and the fault schedule (broker restarts, Kafka restarts, forged commands, a SIGKILL of every process kind,
the flood), then SIGINT; what it left is a ``Drill``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("forge_kafka")
import sqlalchemy as sa
from forge_kafka.cluster import KafkaCluster
from forge_mqtt.testing import MosquittoServer
from pasta_drill_attackers import Wiretap, flood, forge_commands

from forge_core.testing import ServerUnavailable, watched_popen

PLANT = Path(__file__).resolve().parents[2]
ROLES = ("machine", "health", "bridge", "operator", "monitor")
#: the plant's key for signed commands, once command signing lands (issue 11 §1): set when known
COMMAND_KEY_ENV: str | None = "PASTA_COMMAND_SECRET"
#: every process kind, once; "scheduler" is resolved to the lease holder at the time of the kill
KILLS = ("machine-1", "scheduler", "bridge", "production", "sorting", "storage_monitor", "machine_health",
         "monitor")


def child_pids(parent: int) -> dict[str, int]:
    """Instance name -> pid of the parent's live children (``forge run ... --only NAME``)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"--only" in argv:
            found[argv[argv.index(b"--only") + 1].decode()] = int(entry.name)
    return found


def running(logs: Path, name: str) -> bool:
    """The instance's latest life has started its components (``forge run`` printed "running")."""
    try:
        latest = (logs / f"{name}.log").read_text(errors="replace").rsplit("\n--- ", 1)[-1]
    except OSError:
        return False
    return "running plant" in latest


def lease_holder(engine: sa.Engine) -> tuple[str | None, int]:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT holder, epoch FROM forge_leases WHERE name = 'scheduler'")).first()
    return (row.holder, int(row.epoch)) if row else (None, 0)


def wait_for(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"forge run exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def drill_plant(tmp_path: Path) -> Path:
    """The plant as shipped, with the random chaos off: this drill's faults are scripted."""
    plant = tmp_path / "pasta"
    plant.mkdir()
    doc = yaml.safe_load((PLANT / "plant.yaml").read_text())
    doc["profiles"]["distributed"]["components"]["chaos"]["params"]["enabled"] = False
    (plant / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copytree(PLANT / "schemas", plant / "schemas")
    return plant


class Timeline:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        self.events: list[tuple[float, str]] = []

    def note(self, what: str) -> None:
        self.events.append((round(time.monotonic() - self.t0, 1), what))
        print(f"  [{self.events[-1][0]:6.1f}s] {what}", flush=True)


@dataclass
class Drill:
    """What one drill run left: the merged summary, the wiretap, the database, the fault times."""

    summary: dict[str, Any]
    exit_code: int | None
    tap: Wiretap
    url: str
    logs: Path
    timeline: Timeline
    killed_at: dict[str, float] = field(default_factory=dict)
    forged_at: float = 0.0
    stopping_at: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    #: figure -> what is wrong with it (empty: as promised)
    problems: dict[str, list[str]] = field(default_factory=dict)



def run_drill(tmp: Path, url: str) -> Drill:
    """Start the servers and the plant, run the fault schedule, stop with SIGINT; servers closed after."""
    plant = drill_plant(tmp)
    logs = plant / ".forge" / "processes"
    passwords = {role: f"{role}-{os.getpid()}-drill" for role in ROLES}
    try:
        kafka = KafkaCluster(1, base_dir=tmp / "kafka")
    except ServerUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    broker = MosquittoServer(users=passwords, acl_file=PLANT / "security" / "mosquitto.acl",
                             base_dir=tmp / "mosquitto", persistence=True)
    proc: subprocess.Popen[str] | None = None
    tap: Wiretap | None = None
    engine = sa.create_engine(url)
    timeline = Timeline()
    killed_at: dict[str, float] = {}
    figures: dict[str, Any] = {}
    out_path, err_path = tmp / "run.json", tmp / "run.err"
    try:
        kafka.start()
        broker.start()
        timeline.note(f"servers up: Kafka {kafka.bootstrap} ({kafka.start_seconds:.0f}s), Mosquitto :{broker.port}")
        env = {**os.environ, "MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port),
               "KAFKA_BOOTSTRAP": kafka.bootstrap, "FORGE_DATABASE_URL": url,
               **{f"PASTA_MQTT_{role.upper()}_PASSWORD": pw for role, pw in passwords.items()},
               COMMAND_KEY_ENV: f"drill-plant-key-{os.getpid()}-0123456789"}
        env.pop("FORGE_DISABLE_PLUGINS", None)
        tap = Wiretap(broker.host, broker.port, passwords["monitor"])
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = watched_popen(  # killed with its children if this run is killed
                [sys.executable, "-m", "forge_core.cli", "run", str(plant), "--profile", "distributed",
                 "--seed", "11", "--duration", "900s", "--json"], env=env, stdout=out, stderr=err, text=True)
        # ready: every machine cuts (the scheduler led, the bridge carried its commands)
        wait_for(lambda: {m for _, m, _ in tap.beats()} == {0, 1, 2}, 120, "every machine to cut", proc)
        timeline.note("plant ready: every machine cuts")
        time.sleep(5)

        # 1. Mosquitto: two outages in a row (a clean stop: persistence keeps sessions and queues)
        for n in (1, 2):
            broker.stop()
            timeline.note(f"Mosquitto stopped ({n}/2)")
            time.sleep(8)
            broker.start()
            timeline.note(f"Mosquitto started ({n}/2)")
            time.sleep(12)

        # 2. the Kafka broker: two outages in a row, a clean stop then a crash
        for n, how in ((1, "stopped"), (2, "SIGKILLed")):
            began = time.monotonic()
            if how == "stopped":
                kafka.stop(0)
            else:
                kafka.kill(0)
            timeline.note(f"Kafka broker {how} ({n}/2, {time.monotonic() - began:.1f}s)")
            time.sleep(5)
            began = time.monotonic()
            kafka.brokers[0].start()
            started = time.monotonic() - began
            kafka.wait_ready(timeout=120)
            timeline.note(f"Kafka broker back ({n}/2, {started:.1f}s to start, {time.monotonic() - began:.1f}s "
                          f"to be in the metadata)")
            time.sleep(8)

        # 3. forged commands, three ways
        blades = {m: b for _, m, b in tap.beats()}
        forged_at = time.time()
        figures["forgers"] = forge_commands(broker.host, broker.port, passwords, blades)
        timeline.note(f"forged commands sent: {figures['forgers']}")
        time.sleep(6)  # a swap takes 2 s: an obeyed forgery would show by now

        # 4. SIGKILL of every process kind once; the parent starts each again. Production dies just
        # after it handled a beat (before its consumer's next offset commit: the redelivery case).
        for name in KILLS:
            if name == "scheduler":
                name, epoch = lease_holder(engine)
                assert name is not None, "no scheduler holds the lease"
                timeline.note(f"the leader is {name} (epoch {epoch})")
            if name == "production":
                seen = len(tap.beats())
                wait_for(lambda seen=seen: len(tap.beats()) > seen, 20, "a bladed beat", proc)
                time.sleep(0.3)
            pids = child_pids(proc.pid)
            assert name in pids, f"{name} has no live process: {pids}"
            os.kill(pids[name], signal.SIGKILL)
            killed_at[name] = time.time()
            timeline.note(f"SIGKILL {name} (pid {pids[name]})")
            time.sleep(7)
        wait_for(lambda: all(running(logs, n) for n in killed_at), 90, "every killed process to run again", proc)
        timeline.note("every killed process runs again")
        time.sleep(8)

        # 5. the malformed flood
        figures["flood"] = flood(broker.host, broker.port, passwords["machine"])
        timeline.note(f"flood done: {figures['flood']}")
        time.sleep(15)

        # the end: SIGINT, as Ctrl-C would
        proc.send_signal(signal.SIGINT)
        stopping_at = time.time()
        timeline.note("SIGINT to forge run")
        proc.wait(timeout=120)
        timeline.note(f"forge run exited {proc.returncode}")
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if tap is not None:
            tap.close()
        broker.close()
        kafka.close()
        engine.dispose()

    text = out_path.read_text()
    assert text.strip(), f"no summary; stderr:\n{err_path.read_text()[-4000:]}\nlogs in {logs}"
    summary = json.loads(text[text.find("{"):])
    return Drill(summary, proc.returncode, tap, url, logs, timeline, killed_at, forged_at, stopping_at, figures)

