"""A graceful upgrade of the PMS on the distributed plant (real Mosquitto, Kafka, PostgreSQL): the PMS
process is stopped (SIGTERM) and a new one started while the clients post orders and a factory
fails, so its DOWN report is due while no PMS runs. Nothing is lost: the clients' retries with the
same Idempotency-Key carry their orders over (each created once), and the MMS's retried report
reaches the new PMS, which moves the failed factory's orders.

The rest of the plant runs under ``forge run --profile distributed`` (each instance its own process);
the PMS, one replica, is started by the test from the same plant with ``--only pms`` so the test can
replace it. The MMS and the clients find the new process by its ``sched.endpoint`` announcement.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

paho = pytest.importorskip("paho.mqtt.client")
pytest.importorskip("forge_kafka")
pytest.importorskip("forge_sched")
pytest.importorskip("forge_mms")
sa = pytest.importorskip("sqlalchemy")
from forge_mqtt.testing import MosquittoServer  # noqa: E402

from forge_core.testing import watched_popen  # noqa: E402

PLANT = Path(__file__).resolve().parents[1]
#: The plant runs at least this long (the clients' >= 20 accepted orders), and on until the upgrade is done: the test
#: ends it with SIGTERM (a graceful stop with its --json summary, as --duration's), not at a fixed time, so a slow
#: start under load cannot cut the scenario short. RUN_CAP is its --duration, a bound only.
RUN_SECONDS, RUN_CAP = 100, 600
#: Bounds of the waits for the plant's progress (each a condition polled every second, not a sleep): its processes
#: and the PMS start, migrate and take the first orders in ~15 s here when quiet, over a minute at load 20-30.
START_BOUND, STEP_BOUND = 240, 120


def write_plant(root: Path, *, with_pms: bool) -> Path:
    doc = yaml.safe_load((PLANT / "plant.yaml").read_text())
    doc["components"]["pms"]["replicas"] = 1
    if not with_pms:
        del doc["components"]["pms"], doc["profiles"]["distributed"]["components"]["pms"]
    doc["components"]["clients"]["params"].update({"min_interval": 1.0, "max_interval": 2.0, "attempts": 40,
                                                   "retry_after": 1.0, "timeout": 3.0})
    root.mkdir()
    (root / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copytree(PLANT / "schemas", root / "schemas")
    return root


def start_pms(plant: Path, env: dict[str, str], life: int) -> subprocess.Popen[str]:
    return watched_popen([sys.executable, "-m", "forge_core.cli", "run", str(plant), "--profile", "distributed",
                          "--only", "pms", "--json", "--data-dir", str(plant / f"pms-life{life}")],
                         env={**env, "FORGE_INSTANCE": f"pms-life{life}"}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)


#: The clients' orders (POSTed over REST), not the simulated ERP's (created over the bus by erp_link, keyed
#: ``request:...``, or ``b2mml:<hash>`` for B2MML IDs that cannot be a key: industry40.components.erp_link.order_key).
CLIENTS_ONLY = ("WHERE coalesce(idempotency_key, '') NOT LIKE 'request:%' "
                "AND coalesce(idempotency_key, '') NOT LIKE 'b2mml:%'")


def query(url: str, sql: str) -> list[Any]:
    """Rows of ``sql``, or none while the tables are not there yet."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)).all())
    except sa.exc.SQLAlchemyError:
        return []  # not migrated yet
    finally:
        engine.dispose()


def wait_for(condition: Callable[[], bool], bound: float, what: str,
             processes: dict[str, subprocess.Popen[str]]) -> None:
    """Poll ``condition`` every second until it holds; fail naming ``what`` if ``bound`` s pass or a process ends."""
    deadline = time.monotonic() + bound
    while not condition():
        ended = [name for name, p in processes.items() if p.poll() is not None]
        if ended or time.monotonic() > deadline:
            for p in processes.values():
                if p.poll() is None:
                    p.kill()
            logs = "\n".join(f"{name} (exit {p.wait()}): {p.communicate()[1][-3000:]}"
                             for name, p in processes.items())
            why = f"{ended} ended first" if ended else f"not within {bound} s"
            raise AssertionError(f"{what}: {why}\n{logs}")
        time.sleep(1)


def count_orders(url: str) -> int:
    """The clients' orders so far: the first PMS must have answered some POSTs before the upgrade."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM orders {CLIENTS_ONLY}")).scalar() or 0)
    except sa.exc.SQLAlchemyError:
        return 0  # not migrated yet
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.servers
def test_stopping_the_pms_and_starting_a_new_one_loses_no_order_and_no_status_report(
        tmp_path: Path, kafka_bootstrap: str, postgres_url: str) -> None:
    rest = write_plant(tmp_path / "plant", with_pms=False)
    pms_plant = write_plant(tmp_path / "pms", with_pms=True)
    broker = MosquittoServer(base_dir=tmp_path / "mosquitto").start()
    env = {**os.environ, "MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port), "KAFKA_BOOTSTRAP": kafka_bootstrap,
           "FORGE_DATABASE_URL": postgres_url}
    env.pop("FORGE_DISABLE_PLUGINS", None)
    operator = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="operator")
    operator.connect(broker.host, broker.port)
    operator.loop_start()
    lives: list[subprocess.Popen[str]] = []
    outputs: list[tuple[int, str, str]] = []

    def mode(factory: str, value: str) -> None:
        operator.publish(f"factory/{factory}/mode", json.dumps({"factoryId": factory, "mode": value,
                                                                "reason": "upgrade test"}), qos=1).wait_for_publish()

    try:
        plant = watched_popen([sys.executable, "-m", "forge_core.cli", "run", str(rest), "--profile",
                               "distributed", "--seed", "4", "--duration", f"{RUN_CAP}s", "--json"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        plant_started = time.monotonic()
        time.sleep(3)  # the parent migrates the database before its children start
        lives.append(start_pms(pms_plant, env, 0))
        wait_for(lambda: count_orders(postgres_url) >= 5, START_BOUND, "no orders reached the first PMS",
                 {"plant": plant, "pms": lives[0]})
        first_orders_after = time.monotonic() - plant_started
        # the upgrade: stop the PMS (SIGTERM: its graceful stop), and while none runs, factory-2 fails
        lives[0].send_signal(signal.SIGTERM)
        stopped_at = time.time()
        mode("factory-2", "stop")
        out, err = lives[0].communicate(timeout=60)
        outputs.append((lives[0].returncode, out, err))
        orders_before = count_orders(postgres_url)  # every client order from here on is the new PMS's
        time.sleep(2)  # a real gap: the MMS's DOWN verdict and some orders fall in it
        lives.append(start_pms(pms_plant, env, 1))
        started_at = time.time()
        time.sleep(25)
        # factory-2 recovers once the new PMS took its DOWN report (the assertions below want that order)
        wait_for(lambda: bool(query(postgres_url, "SELECT 1 FROM failover_events WHERE factory_id = 'factory-2' AND "
                                                  f"status = 'DOWN' AND outcome = 'accepted' AND at > {started_at}")),
                 STEP_BOUND, "factory-2's DOWN report not accepted by the new PMS", {"plant": plant, "pms": lives[1]})
        mode("factory-2", "recover")
        wait_for(lambda: bool(query(postgres_url, "SELECT 1 FROM failover_events WHERE factory_id = 'factory-2' AND "
                                                  f"status = 'UP' AND at > {started_at}"))
                 and count_orders(postgres_url) >= orders_before + 5
                 and time.monotonic() - plant_started >= RUN_SECONDS,
                 STEP_BOUND + RUN_SECONDS, "factory-2's UP report and 5 orders at the new PMS",
                 {"plant": plant, "pms": lives[1]})
        plant.send_signal(signal.SIGTERM)  # the end of the run, as --duration's: a graceful stop and its summary
        out, err = plant.communicate(timeout=120)
        lives[1].send_signal(signal.SIGTERM)
        pms_out, pms_err = lives[1].communicate(timeout=60)
        outputs.append((lives[1].returncode, pms_out, pms_err))
    finally:
        for life in lives:
            if life.poll() is None:
                life.kill()
                life.wait()
        operator.loop_stop()
        operator.disconnect()
        broker.close()

    summary = json.loads(out)
    failed = [c for c in summary["checks"] if not c["passed"]]
    assert plant.returncode == 0 and not failed, (failed, err[-3000:])
    for code, text, errors in outputs:  # each PMS life stopped gracefully with its checks passing
        assert code == 0 and text.strip(), errors[-3000:]
        pms = json.loads(text)
        assert all(c["passed"] for c in pms["checks"]), pms["checks"]
    first, second = (json.loads(text)["reports"]["pms"] for _, text, _ in outputs)

    # orders: every one the clients posted was accepted, once, some of them only by the new PMS
    clients = summary["reports"]["clients"]
    assert clients["given_up"] == 0 and clients["accepted"] >= 20, clients
    assert clients.get("no_answer", 0) + clients.get("no_endpoint", 0) >= 1, f"no order met the gap: {clients}"
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            total = conn.execute(sa.text(f"SELECT count(*) FROM orders {CLIENTS_ONLY}")).scalar()
            keys = conn.execute(sa.text(f"SELECT count(DISTINCT idempotency_key) FROM orders {CLIENTS_ONLY}")).scalar()
            down = conn.execute(sa.text(
                "SELECT at, attempts, outcome, orders_moved FROM failover_events WHERE factory_id = 'factory-2' "
                f"AND status = 'DOWN' AND at > {stopped_at} ORDER BY at")).all()
            up = conn.execute(sa.text(
                "SELECT at, outcome FROM failover_events WHERE factory_id = 'factory-2' AND status = 'UP' "
                f"AND at > {started_at} ORDER BY at")).all()
            left = conn.execute(sa.text("SELECT count(*) FROM factory_assignments a JOIN orders o ON o.id = "
                                        "a.order_id WHERE a.factory_id = 'factory-2' AND a.revoked_at IS NULL AND "
                                        "o.status <> 'completed'")).scalar()
    finally:
        engine.dispose()
    assert total == keys and clients["accepted"] <= total <= clients["accepted"] + 1, (total, keys, clients)
    assert first["post"] >= 5 and second["post"] >= 5, (first, second)
    # the status report: due while no PMS ran, retried, accepted by the new one, and the orders moved then
    # (while no PMS ran, a round of retries may end 'failed'; the report is resent until accepted)
    accepted = [row for row in down if row[2] == "accepted"]
    assert accepted and accepted[0][0] >= started_at, (down, stopped_at, started_at)
    assert all(row[2] == "failed" for row in down[:down.index(accepted[0])]), down
    assert second["reports"] >= 1, second
    assert up and up[0][1] == "accepted", up  # and the recovery after it
    print(f"\nupgrade: the first orders {first_orders_after:.0f} s after the plant's start; PMS stopped at +0, "
          f"new one started at +{started_at - stopped_at:.1f}s; factory-2's DOWN "
          f"accepted at +{accepted[0][0] - stopped_at:.1f}s after {len(down) - 1} failed round(s) "
          f"({accepted[0][3]} orders moved); "
          f"clients {clients}; orders left on factory-2 at the end: {left}")
