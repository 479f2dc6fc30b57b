"""Apache Kafka (KRaft) for tests and drills: :class:`KafkaCluster`, 1 or 3 brokers on 127.0.0.1.

The broker's jars come from Maven Central once (:func:`fetch_kafka`: ``mvn dependency:copy-dependencies``
on the small pom kept beside the plugin, ``kafka-broker/pom.xml``) into ``~/.cache/forge/kafka-<version>/``;
later calls find them there and touch no network. Each node runs in combined mode
(``process.roles=broker,controller``) in its own JVM, with its storage formatted first
(``kafka.tools.StorageTool``, what ``kafka-storage.sh format`` runs), a static controller quorum,
free ports and a temp dir removed at the end. Three nodes get replication factor 3 and
``min.insync.replicas=2``, so acks=all writes survive one broker down; one node gets 1/1.

``python -m forge_kafka.cluster fetch`` pre-fetches the jars (CI's set-up does);
``python -m forge_kafka.cluster up --brokers 3`` runs a cluster until Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Self

from confluent_kafka import KafkaException
from forge_core.testing import ServerError, ServerProcess, ServerUnavailable, find_free_port, guard_dir, release_dir

from forge_kafka.cluster_security import ScramSecurity, grant
from forge_kafka.jars import (
    JVM_FLAGS,
    KAFKA_VERSION,
    LOG4J2,
    cluster_id,
    fetch_kafka,
    java_or_error,
    kafka_api_versions_probe,
    kafka_version,
)

__all__ = ["KAFKA_VERSION", "KafkaBroker", "KafkaCluster", "fetch_kafka", "java_or_error"]

class KafkaBroker(ServerProcess):
    """One KRaft node (broker and controller in one JVM) of a :class:`KafkaCluster`.

    ``port`` is its client listener; ``controller_port`` its controller listener. Storage survives
    :meth:`stop`/:meth:`kill` and :meth:`start` (the cluster's temp dir is removed at the end).
    """

    stop_signal = signal.SIGTERM  # controlled shutdown: leadership moves away first
    start_timeout = 120.0

    def __init__(self, cluster: KafkaCluster, node_id: int, port: int, controller_port: int) -> None:
        self.name = f"kafka-{node_id}"
        self.cluster = cluster
        self.node_id = node_id
        self.controller_port = controller_port
        super().__init__(port=port, base_dir=cluster.dir / f"node-{node_id}")
        self.data_dir = self.dir / "data"
        self.config_path = self.dir / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _java(self, main: str, *args: str) -> list[str]:
        c = self.cluster
        return [c.java, *JVM_FLAGS, f"-Dlog4j2.configurationFile={c.dir / 'log4j2.properties'}",
                "-cp", f"{c.jars}/*", main, *args]

    def properties(self) -> dict[str, str]:
        c = self.cluster
        rf, isr = c.replication, c.min_insync
        listeners = {"PLAINTEXT": f"{self.host}:{self.port}", "CONTROLLER": f"{self.host}:{self.controller_port}"}
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": c.voters,
            "listeners": ",".join(f"{name}://{address}" for name, address in listeners.items()),
            "advertised.listeners": f"PLAINTEXT://{listeners['PLAINTEXT']}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(isr),
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "5",  # 50 by default: slow to create on first group use
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(isr),
            "transaction.state.log.num.partitions": "5",
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": str(isr),
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "500",  # tests use 1-2 s sessions; the default floor is 6 s
            "auto.create.topics.enable": "true",
            "unclean.leader.election.enable": "false",
            # A dead broker is fenced (and leaves every ISR) after broker.session.timeout.ms.
            "broker.session.timeout.ms": str(c.broker_session_ms),
            "broker.heartbeat.interval.ms": "500",
            "replica.lag.time.max.ms": "10000",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "background.threads": "2",
            "log.cleaner.threads": "1",
            "log.cleaner.dedupe.buffer.size": str(2 * 1024 * 1024),
        }
        props.update(c.security.broker_properties(listeners) if c.security else {})
        props.update(c.extra_properties)
        return props

    def _prepare(self) -> None:
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        args = ["format", "-t", self.cluster.cluster_id, "-c", str(self.config_path), "--ignore-formatted"]
        if self.cluster.security:
            args += self.cluster.security.format_args()
        with open(self.log_path, "ab") as log:
            result = subprocess.run(self._java("kafka.tools.StorageTool", *args), stdout=log,
                                    stderr=subprocess.STDOUT, cwd=self.dir, check=False)
        if result.returncode != 0:
            raise ServerError(f"{self.name}: formatting storage failed (exit {result.returncode}); "
                              f"log {self.log_path}:\n{self.log_tail()}")

    def _command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.config_path))

    def _is_ready(self) -> bool:
        # The client listener answers ApiVersions only once the broker has joined the quorum and
        # caught up with the metadata log (until then requests wait or the port is closed).
        return kafka_api_versions_probe(self.host, self.port, timeout=0.5)

    def _terminate(self, sig: int, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)  # a frozen JVM cannot shut down
        self.cluster._frozen.discard(self.node_id)
        super()._terminate(sig, timeout)


# Clusters alive at interpreter exit are closed (ServerProcess does the same per broker).
_CLUSTERS: weakref.WeakSet[KafkaCluster] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for cluster in list(_CLUSTERS):
        with contextlib.suppress(Exception):
            cluster.close()


class KafkaCluster:
    """Apache Kafka in KRaft combined mode: ``brokers`` (1 or 3) nodes on 127.0.0.1, a context manager.

    ``security="scram"`` adds SASL/SCRAM-SHA-256 listeners and the standard authorizer (see
    :class:`forge_kafka.cluster_security.ScramSecurity`); ``extra`` overrides broker properties.
    Brokers are addressed by index ``0..brokers-1`` (also their ``node.id``).
    """

    def __init__(self, brokers: int = 1, *, base_dir: Path | None = None, version: str | None = None,
                 security: Literal["scram"] | None = None, users: dict[str, str] | None = None,
                 extra: dict[str, str] | None = None, broker_session_ms: int = 3000) -> None:
        if brokers not in (1, 3):
            raise ValueError(f"KafkaCluster: brokers must be 1 or 3, not {brokers}")
        self.java = java_or_error()
        self.version = version or kafka_version()
        self.jars = fetch_kafka(self.version)
        self._own_dir = base_dir is None
        self.dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="forge-kafka-cluster-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._own_dir:  # removed by the watchdog if this process is killed before close()
            guard_dir(self.dir)
        (self.dir / "log4j2.properties").write_text(LOG4J2)
        self.cluster_id = cluster_id()
        self.replication, self.min_insync = (3, 2) if brokers == 3 else (1, 1)
        self.broker_session_ms = broker_session_ms
        self.extra_properties = dict(extra or {})
        self.security = ScramSecurity(users) if security == "scram" else None
        if security not in (None, "scram"):
            raise ValueError(f"KafkaCluster: security must be None or 'scram', not {security!r}")
        ports = [(find_free_port(), find_free_port()) for _ in range(brokers)]
        self.voters = ",".join(f"{i}@127.0.0.1:{controller}" for i, (_, controller) in enumerate(ports))
        self.brokers = [KafkaBroker(self, i, port, controller) for i, (port, controller) in enumerate(ports)]
        self._frozen: set[int] = set()
        self._closed = False
        self.start_seconds: float | None = None

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` naming every broker."""
        return ",".join(b.bootstrap for b in self.brokers)

    @property
    def host(self) -> str:
        return self.brokers[0].host

    @property
    def port(self) -> int:
        return self.brokers[0].port

    @property
    def running(self) -> bool:
        """Every broker's JVM is alive (frozen ones count as alive)."""
        return all(b.running for b in self.brokers)

    def client_config(self, user: str | None = None) -> dict[str, Any]:
        """librdkafka settings to reach the cluster (as ``user`` when it runs with SCRAM)."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap}
        if self.security:
            config.update(self.security.client_config(user))
        return config

    # -- life cycle --------------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> Self:
        """Start every broker that is not running (in parallel: a quorum forms only with a majority)
        and wait until the cluster's metadata lists them all."""
        if self._closed:
            raise ServerError("KafkaCluster was closed; create a new one")
        began = time.monotonic()
        _CLUSTERS.add(self)
        self._parallel([b for b in self.brokers if not b.running], lambda b: b.start())
        self.wait_ready(timeout=max(5.0, timeout - (time.monotonic() - began)))
        self.start_seconds = time.monotonic() - began
        return self

    def wait_ready(self, timeout: float = 60.0, brokers: int | None = None) -> None:
        """Wait until the cluster's metadata lists ``brokers`` brokers (default: every running one)."""
        want = brokers if brokers is not None else sum(b.running and b.node_id not in self._frozen
                                                       for b in self.brokers)
        deadline = time.monotonic() + timeout
        seen: object = None
        while time.monotonic() < deadline:
            try:
                seen = sorted(self.admin().list_topics(timeout=5).brokers)
                if len(seen) >= want:
                    return
            except KafkaException as exc:  # while the quorum forms
                seen = exc
            time.sleep(0.2)
        raise ServerError(f"KafkaCluster at {self.bootstrap}: {want} broker(s) not in the metadata after "
                          f"{timeout:.0f}s (last: {seen}); logs in {self.dir}:\n{self.brokers[0].log_tail()}")

    def _parallel(self, brokers: Sequence[KafkaBroker], action: Callable[[KafkaBroker], Any]) -> None:
        errors: list[BaseException] = []

        def run(broker: KafkaBroker) -> None:
            try:
                action(broker)
            except BaseException as exc:  # noqa: BLE001 - re-raised below, first one wins
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(b,), daemon=True) for b in brokers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def close(self) -> None:
        """SIGKILL every broker (the data goes with the temp dir anyway) and remove the temp dir."""
        if self._closed:
            return
        self._closed = True
        def finish(broker: KafkaBroker) -> None:
            broker.kill()
            broker.close()

        self._parallel(self.brokers, finish)
        _CLUSTERS.discard(self)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            release_dir(self.dir)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- drills ------------------------------------------------------------------------------------
    def stop(self, i: int) -> None:
        """Stop broker ``i`` gracefully (controlled shutdown moves its leaderships first)."""
        self.brokers[i].stop()

    def kill(self, i: int) -> None:
        """SIGKILL broker ``i``, as a crash would."""
        self.brokers[i].kill()

    def freeze(self, i: int) -> None:
        """SIGSTOP broker ``i``: its sockets stay open but it answers nothing (a hung host)."""
        broker = self.brokers[i]
        if broker.proc is None:
            raise ServerError(f"{broker.name} is not running")
        os.kill(broker.proc.pid, signal.SIGSTOP)
        self._frozen.add(i)

    def thaw(self, i: int) -> None:
        """SIGCONT broker ``i`` after :meth:`freeze`."""
        broker = self.brokers[i]
        if broker.proc is not None:
            os.kill(broker.proc.pid, signal.SIGCONT)
        self._frozen.discard(i)

    def restart(self, i: int, timeout: float = 120.0) -> None:
        """Start broker ``i`` again (stopping it first if it runs) and wait until it is back in the metadata."""
        broker = self.brokers[i]
        broker.stop()
        broker.start()
        self.wait_ready(timeout=timeout)

    def admin(self, user: str | None = None) -> Any:
        """A confluent_kafka AdminClient on the cluster."""
        from confluent_kafka.admin import AdminClient

        return AdminClient(self.client_config(user))

    def grant(self, user: str, **acl: Any) -> None:
        """Add ACLs allowing ``user`` topics/groups (``security="scram"`` only): see
        :func:`forge_kafka.cluster_security.grant`."""
        if not self.security:
            raise ServerError("KafkaCluster.grant: the cluster runs without security (security='scram')")
        grant(self.admin(), user, **acl)

    def leader_of(self, topic: str, partition: int = 0, timeout: float = 10.0) -> int:
        """Index of the broker leading ``topic``/``partition`` (waits while the partition has none)."""
        leader: int = self._partition(topic, partition, timeout, lambda p: p.leader >= 0).leader
        return leader

    def isr_of(self, topic: str, partition: int = 0, timeout: float = 10.0) -> list[int]:
        """Brokers in the in-sync replica set of ``topic``/``partition``."""
        return sorted(self._partition(topic, partition, timeout, lambda p: True).isrs)

    def _partition(self, topic: str, partition: int, timeout: float, ok: Callable[[Any], bool]) -> Any:
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                meta = self.admin().list_topics(topic, timeout=5).topics[topic]
                if meta.error is None and partition in meta.partitions and ok(meta.partitions[partition]):
                    return meta.partitions[partition]
                last = meta.error or meta.partitions.get(partition)
            except KafkaException as exc:  # metadata while brokers come and go
                last = exc
            if time.monotonic() > deadline:
                raise ServerError(f"KafkaCluster: no metadata for {topic}[{partition}] after {timeout:.0f}s: {last}")
            time.sleep(0.2)

    def __repr__(self) -> str:
        return f"<KafkaCluster {len(self.brokers)} broker(s) {self.bootstrap} dir={self.dir}>"


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m forge_kafka.cluster", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="fetch the broker jars from Maven Central into the cache and print the dir")
    up = sub.add_parser("up", help="run a cluster on 127.0.0.1 until SIGINT/SIGTERM, print its bootstrap")
    up.add_argument("--brokers", type=int, choices=(1, 3), default=3)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            java_or_error()
            print(fetch_kafka())
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        with KafkaCluster(args.brokers) as cluster:
            print(f"export KAFKA_BOOTSTRAP={cluster.bootstrap}  # {cluster.start_seconds:.1f}s to start", flush=True)
            while not stop.wait(0.5):
                pass
    except (ServerError, ServerUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
