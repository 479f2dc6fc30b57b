"""Local servers for a distributed plant: Mosquitto, Apache Kafka (one broker, or three with
``--kafka-cluster``; Tansu with ``--tansu``) and PostgreSQL.

``scripts/servers.sh start`` runs ``python scripts/servers.py up``. It lives beside the scripts, not
in forge_core, because it composes core's server (PostgreSQL) with the plugins' own test servers
(``forge_mqtt.testing.MosquittoServer``, ``forge_kafka.testing.KafkaCluster`` and ``KafkaServer``), and
core imports no plugin.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path

from forge_kafka.testing import KafkaCluster, KafkaServer
from forge_mqtt.testing import MosquittoServer

from forge_core.testing import PostgresServer, ServerError, ServerProcess, ServerUnavailable

#: The broker users of the pasta plant's distributed profile and the ACL that gives each its role.
MQTT_ROLES = ("machine", "health", "bridge", "operator", "monitor")
PASTA_ACL = Path(__file__).resolve().parents[1] / "examples" / "pasta_plant" / "security" / "mosquitto.acl"
#: The sensor plant's MQTT user (its MQTT-only sensors and the bridge), appended to the pasta plant's ACL.
SENSOR_ACL = Path(__file__).resolve().parents[1] / "examples" / "sensor_monitoring" / "security" / "mosquitto.acl"


def serve(env_file: Path, base_dir: Path | None = None, kafka: str = "apache", brokers: int = 1,
          scram: bool = False) -> None:
    """Start Mosquitto, Kafka (``kafka``: "apache" with ``brokers`` 1 or 3, or "tansu") and PostgreSQL on
    127.0.0.1, write the variables a distributed plant reads to ``env_file`` (``export NAME=value``
    lines), and keep them up until SIGINT/SIGTERM. ``scram``: Apache Kafka with SASL/SCRAM and the sensor
    plant's principals and ACLs (its ``cluster_secure`` profile; sensor_monitoring.security).

    This process owns the servers: stopping it stops them (and removes their temp dirs)."""
    stop = False

    def ask_stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    root = Path(base_dir) if base_dir else None
    servers: list[ServerProcess] = []
    cluster: KafkaCluster | None = None
    kafka_env: dict[str, str] = {}
    acl_file: Path | None = None
    try:
        # Secure by default (docs/security.md): one user per role of the pasta plant's ACL, fresh random
        # passwords each start, anonymous refused; persistent sessions survive a broker restart.
        passwords = {role: secrets.token_urlsafe(18) for role in MQTT_ROLES}
        sensors_password = secrets.token_urlsafe(18)
        acl = tempfile.NamedTemporaryFile("w", prefix="forge-servers-", suffix=".acl", delete=False)  # noqa: SIM115
        acl.write(PASTA_ACL.read_text() + "\n" + SENSOR_ACL.read_text())
        acl.close()
        acl_file = Path(acl.name)
        mqtt = MosquittoServer(base_dir=root / "mosquitto" if root else None,
                               users={**passwords, "sensors": sensors_password}, acl_file=acl_file,
                               persistence=True).start()
        servers.append(mqtt)
        if kafka == "tansu":
            tansu = KafkaServer(base_dir=root / "kafka" if root else None).start()
            servers.append(tansu)
            bootstrap = tansu.bootstrap
        else:
            kafka_users: dict[str, str] = {}
            if scram:
                from sensor_monitoring.security import client_environment, grant_plant
                from sensor_monitoring.security import passwords as plant_passwords

                kafka_users = plant_passwords()
            cluster = KafkaCluster(brokers, base_dir=root / "kafka" if root else None,
                                   security="scram" if scram else None, users=kafka_users or None)
            bootstrap = cluster.start().bootstrap
            if scram:
                grant_plant(cluster.grant)
                kafka_env.update(client_environment(kafka_users))
        pg = PostgresServer(base_dir=root / "postgres" if root else None).start()
        servers.append(pg)
        database = pg.create_database("forge")
        variables = {"MQTT_HOST": mqtt.host, "MQTT_PORT": str(mqtt.port), "KAFKA_BOOTSTRAP": bootstrap,
                     "FORGE_DATABASE_URL": database, "SENSOR_MQTT_PASSWORD": sensors_password, **kafka_env,
                     **{f"PASTA_MQTT_{role.upper()}_PASSWORD": pw for role, pw in passwords.items()},
                     # the plant key the schedulers sign commands with and the machines check (docs/security.md)
                     "PASTA_COMMAND_SECRET": secrets.token_hex(32)}
        text = "".join(f"export {name}={value}\n" for name, value in variables.items())
        env_file.write_text(text)
        print(text, end="", flush=True)
        while not stop:
            time.sleep(0.2)
            for server in servers:
                if not server.running:
                    raise ServerError(f"{server.name} on {server.host}:{server.port} exited; log {server.log_path}:\n"
                                      f"{server.log_tail()}")
            for broker in cluster.brokers if cluster else []:
                if not broker.running:
                    raise ServerError(f"{broker.name} on {broker.host}:{broker.port} exited; log {broker.log_path}:\n"
                                      f"{broker.log_tail()}")
    finally:
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
        for server in reversed(servers):
            with contextlib.suppress(Exception):
                server.close()
        with contextlib.suppress(OSError):
            env_file.unlink()
        if acl_file is not None:
            with contextlib.suppress(OSError):
                acl_file.unlink()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python scripts/servers.py",
                                     description="Local servers for a distributed plant: Mosquitto, Kafka, PostgreSQL.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the servers, write the env file, run until SIGINT/SIGTERM")
    up.add_argument("--env-file", type=Path, default=Path(".forge-servers.env"))
    up.add_argument("--dir", type=Path, default=None, help="keep the servers' files here (default: temp dirs)")
    kafka = up.add_mutually_exclusive_group()
    kafka.add_argument("--kafka-cluster", action="store_true",
                       help="three Apache Kafka brokers (RF 3, min.insync.replicas 2) instead of one")
    kafka.add_argument("--tansu", action="store_true", help="Tansu (memory storage, no JVM) instead of Apache Kafka")
    up.add_argument("--kafka-scram", action="store_true",
                    help="Apache Kafka with SASL/SCRAM and the sensor plant's principals and ACLs (its profile "
                         "cluster_secure)")
    args = parser.parse_args(argv)
    try:
        serve(args.env_file, args.dir, kafka="tansu" if args.tansu else "apache",
              brokers=3 if args.kafka_cluster else 1, scram=args.kafka_scram)
    except (ServerError, ServerUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
