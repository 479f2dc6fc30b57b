"""One run of the distributed Industry 4.0 plant (``--profile distributed``, chaos on) against real
Mosquitto, Kafka and PostgreSQL, with the plain clients and the ERP's operator driven beside it; what
it left (summary, wiretap, user, database) for the tests in this folder. See conftest.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("forge_kafka")
pytest.importorskip("forge_mms")
sa = pytest.importorskip("sqlalchemy")
from forge_mqtt.testing import MosquittoServer  # noqa: E402
from i40_clients import BAD_BEATS, BAD_EVENTS, User, Wiretap, factories, paho, plain_grpc, plain_http, pms_endpoints  # noqa: E402
from i40_erp import ERP, erp_calls  # noqa: E402

from forge_core.testing import find_free_port, watched_popen  # noqa: E402

PLANT = Path(__file__).resolve().parents[2]
RUN_SECONDS = 130
DETECTION = 4.0   # DOWN once silent > 3 s, judged within one check (plant.yaml: max_gap 3, check_every 1.0)
PASS = 1.0        # the verdict's scheduling pass
SLACK = 5.0       # MQTT -> bridge -> Kafka -> MMS, gRPC, the transaction, on a loaded 2-core box (load 7-13)
FAILOVER = 12.0   # a killed MMS/PMS leader: lease ttl 5 s, then the successor's election and first check
CHAOS = {"enabled": True, "min_interval": 8.0, "max_interval": 14.0, "min_outage": 8.0, "max_outage": 16.0,
         "weights": {"stop": 3.0, "degraded": 1.0, "flapping": 1.0, "kill_mms": 1.5, "kill_pms": 1.5}}


def drive(plant: Path, host: str, port: int, user: User, stop: threading.Event, tmp: Path) -> None:
    """The plain clients, from 25 s into the run (the processes start slowly on a loaded box)."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="plain-factory-9")
    client.connect(host, port)
    client.loop_start()
    try:
        if stop.wait(25):
            return
        t0 = time.monotonic()
        side = threading.Thread(target=side_calls, args=(plant, user, stop, tmp, t0), daemon=True)
        side.start()
        erp = threading.Thread(target=erp_calls, args=(plant, user, stop, t0), daemon=True)
        erp.start()
        while not stop.is_set():  # to the end: factory 9 must never look DOWN
            n = int(time.monotonic() - t0)
            client.publish("factory/9/heartbeat", json.dumps(
                {"timestamp": time.time(), "metrics": {"cpu": 12.5, "memory": 40.0, "errors": 0}}), qos=1)
            user.beats_9 += 1
            # the bad input only once the plant is surely up (the PMS lists factory 9: the bridge carries its
            # beats) and well before its end, so each one sent must be dead-lettered: at load 34 the
            # processes came up late and the plant stopped late, and 10 of 29 bad beats sent every 7 s
            # from 25 s on to the plant's exit reached no bridge (19 dead letters)
            up = any(f.get("id") == "9" for f in user.factories_seen)
            if up and n % 2 == 1 and user.bad_beats < 10:  # among the good ones: factory 9 stays UP
                client.publish("factory/9/heartbeat", BAD_BEATS[user.bad_beats % len(BAD_BEATS)], qos=1)
                user.bad_beats += 1
            if up and n % 3 == 0 and user.bad_events < len(BAD_EVENTS):
                topic, body = BAD_EVENTS[user.bad_events]
                client.publish(topic, body, qos=1)
                user.bad_events += 1
            stop.wait(1.0)
        side.join(60)
        erp.join(60)
        user.factories_seen = user.factories_seen if any(f["id"] == "9" for f in user.factories_seen) \
            else factories(plant)
    except Exception as exc:  # reported by the test, not lost in a thread
        user.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        client.loop_stop()
        client.disconnect()


def side_calls(plant: Path, user: User, stop: threading.Event, tmp: Path, t0: float) -> None:
    """The REST and gRPC clients, beside factory 9's beats and not between them: a slow call (curl to
    a killed replica's endpoint, protoc, a loaded box) silenced factory 9 for > 3 s and the MMS judged
    it DEGRADED, then DOWN (CI, stop 23: while the driver ran plain_http and plain_grpc)."""
    steps: list[tuple[float, Callable[[], Any]]] = [
        (20, lambda: setattr(user, "factories_seen", factories_with_9(plant, stop))),
        (22, lambda: plain_http(plant, user)),
        (26, lambda: plain_grpc(plant, user, tmp)),
    ]
    try:
        for at, call in steps:
            if stop.wait(max(0.0, t0 + at - time.monotonic())):
                return
            # a PMS to ask: on a loaded box the PMS processes may not have printed their endpoints yet at
            # 45 s into the run (load 20: none had, and the REST calls and factories' read got no answer)
            deadline = time.monotonic() + 60
            while not pms_endpoints(plant) and time.monotonic() < deadline:
                if stop.wait(0.5):
                    return
            call()
    except Exception as exc:  # reported by the test, not lost in a thread
        user.errors.append(f"{type(exc).__name__}: {exc}")



def factories_with_9(plant: Path, stop: threading.Event, within: float = 60.0) -> list[dict[str, Any]]:
    """The PMS's factories once its answer lists factory 9, tried every second (bounded): under chaos and
    load one read can reach a replica just killed, or come before factory 9's first beats were judged
    (load 21-30: the one read at 45 s got no answer twice in three runs). Factory 9's status is the
    test's to check; the last answer when it never appears."""
    deadline = time.monotonic() + within
    while True:
        seen = factories(plant)
        if any(f.get("id") == "9" for f in seen) or time.monotonic() > deadline or stop.wait(1.0):
            return seen


@dataclass
class Run:
    plant: Path
    summary: dict[str, Any]
    stderr: str
    returncode: int
    tap: Wiretap
    user: User
    database: str
    started: float


def run_plant(tmp_path_factory: pytest.TempPathFactory, kafka_server: Any, postgres_server: Any) -> Iterator[Run]:
    """Run the plant to its end, then yield what it left (the conftest's session fixture ``run``)."""
    tmp = tmp_path_factory.mktemp("industry40")
    plant = tmp / "plant"
    plant.mkdir()
    doc = yaml.safe_load((PLANT / "plant.yaml").read_text())
    profile = doc["profiles"]["distributed"]["components"]
    profile["chaos"]["params"].update(CHAOS)
    # orders of 1-20 units (2.5-12 s to make), not 5-60: the factories keep up (with 5-60 they fell behind
    # and an order posted 30 s into the run could still wait, unstarted, at its end)
    profile["clients"]["params"].update({"min_interval": 1.0, "max_interval": 3.0, "attempts": 10,
                                         "min_quantity": 1, "max_quantity": 20})
    profile["erp"]["params"].update(ERP)
    (plant / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copytree(PLANT / "schemas", plant / "schemas")
    if not kafka_server.running:
        kafka_server.start()
    if not postgres_server.running:
        postgres_server.start()
    name = f"i40_distributed_{os.getpid()}"
    url = postgres_server.create_database(name)
    broker = MosquittoServer(base_dir=tmp / "mosquitto").start()
    # the ERP's HTTP inbox: a fixed port a real ERP is given; here a free one below the kernel's ephemeral
    # range. Not an ephemeral one (a bind to port 0): the test kills erp_http and curl, like the simulated ERP,
    # retries its POST while nothing listens, and a connect retried to a free ephemeral port can be handed
    # that very port as its source and connect to itself (TCP simultaneous open); closed, that leaves the
    # port in TIME_WAIT for 60 s and the restarted erp_http cannot bind it (see forge_opcua's self_connect)
    erp_port = find_free_port("127.0.0.1")
    env = {**os.environ, "MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port),
           "KAFKA_BOOTSTRAP": kafka_server.bootstrap, "FORGE_DATABASE_URL": url, "ERP_HTTP_PORT": str(erp_port)}
    env.pop("FORGE_DISABLE_PLUGINS", None)
    tap = Wiretap(broker.host, broker.port)
    user, stop = User(erp_url=f"http://127.0.0.1:{erp_port}"), threading.Event()
    driver = threading.Thread(target=drive, args=(plant, broker.host, broker.port, user, stop, tmp), daemon=True)
    started = time.time()
    try:
        process = watched_popen(  # with its children, killed if this test run is killed
            [sys.executable, "-m", "forge_core.cli", "run", str(plant), "--profile", "distributed", "--seed", "7",
             "--duration", f"{RUN_SECONDS}s", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        driver.start()
        try:
            stdout, stderr = process.communicate(timeout=RUN_SECONDS + 150)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        stop.set()
        driver.join(30)
    finally:
        stop.set()
        tap.close()
        broker.close()
    logs = plant / ".forge" / "processes"
    assert stdout.strip(), f"no summary; stderr:\n{stderr[-4000:]}\nlogs in {logs}"
    (plant / "summary.json").write_text(stdout)  # kept with the logs for a look after a failure
    yield Run(plant, json.loads(stdout), stderr, process.returncode, tap, user, url, started)
    with contextlib.suppress(Exception):
        postgres_server.drop_database(name)


def query(run: Run, sql: str) -> list[Any]:
    engine = sa.create_engine(run.database)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))
    finally:
        engine.dispose()


ERP_ORDER = "coalesce(idempotency_key, '') LIKE 'request:%' OR coalesce(idempotency_key, '') LIKE 'b2mml:%'"
