"""Apache Kafka's broker jars from Maven Central, the Java that runs them and how, and a raw probe that a
Kafka-protocol broker answers (for :mod:`forge_kafka.cluster` and :mod:`forge_kafka.testing`).

:func:`fetch_kafka` runs ``mvn dependency:copy-dependencies`` once on the small pom kept beside the
plugin (``plugins/forge_kafka/kafka-broker/pom.xml``, shipped in the wheel as
``forge_kafka/kafka-broker/pom.xml``) and caches the jars in ``~/.cache/forge/kafka-<version>/``.
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

from forge_core.testing import ServerUnavailable

__all__ = ["JVM_FLAGS", "KAFKA_VERSION", "LOG4J2", "cluster_id", "fetch_kafka", "java_or_error",
           "kafka_api_versions_probe", "kafka_version"]

#: The Apache Kafka release the cluster runs (``$FORGE_KAFKA_VERSION`` overrides; 4.x, KRaft only).
KAFKA_VERSION = "4.1.1"


def kafka_version() -> str:
    """``$FORGE_KAFKA_VERSION`` or :data:`KAFKA_VERSION`."""
    return os.environ.get("FORGE_KAFKA_VERSION", KAFKA_VERSION)


def _pom() -> Path:
    """The pom kept in the repository (editable install) or shipped inside the wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1] / "kafka-broker" / "pom.xml", here / "kafka-broker" / "pom.xml"):
        if candidate.is_file():
            return candidate
    raise ServerUnavailable(f"forge_kafka: kafka-broker/pom.xml not found beside {here}; reinstall forge-kafka")


def java_or_error() -> str:
    """Path of a ``java`` of version 17 or newer (``$JAVA_HOME/bin/java`` first); else ServerUnavailable
    naming the Debian package."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").is_file() else shutil.which("java")
    hint = "install a Java 17+ runtime: apt-get install openjdk-17-jre-headless"
    if not java:
        raise ServerUnavailable(f"Apache Kafka needs Java 17 or newer and 'java' is not on PATH: {hint}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0_392" is Java 8
        major = int(match.group(2))
    if major < 17:
        raise ServerUnavailable(f"Apache Kafka 4 needs Java 17 or newer; {java} is {out.strip()[:80]!r}: {hint}")
    return java


def _cache_root() -> Path:
    override = os.environ.get("FORGE_KAFKA_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "forge"


def fetch_kafka(version: str | None = None) -> Path:
    """The directory holding Apache Kafka ``version``'s broker jars, fetched from Maven Central on first use.

    Cached in ``~/.cache/forge/kafka-<version>/`` (``$FORGE_KAFKA_CACHE`` overrides the parent; Maven keeps
    its own copy in ``~/.m2``); a complete cache is marked by a ``.complete`` file, so a second call runs
    nothing. Concurrent callers (parallel test runs) wait on a lock file instead of fetching twice.
    """
    version = version or kafka_version()
    target = _cache_root() / f"kafka-{version}"
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"kafka-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").is_file():
            return target
        mvn = shutil.which("mvn")
        if not mvn:
            raise ServerUnavailable("fetching Apache Kafka's jars needs Maven and 'mvn' is not on PATH: "
                                    "apt-get install maven (or put the jars in " + str(target) + ")")
        partial = Path(tempfile.mkdtemp(prefix=f"kafka-{version}.", dir=target.parent))
        cmd = [mvn, "-q", "-B", "-f", str(_pom()), "dependency:copy-dependencies", f"-Dkafka.version={version}",
               "-DincludeScope=runtime", f"-DoutputDirectory={partial}"]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        jars = list(partial.glob(f"kafka_2.13-{version}.jar"))
        if result.returncode != 0 or not jars:
            shutil.rmtree(partial, ignore_errors=True)
            raise ServerUnavailable(f"mvn could not fetch org.apache.kafka:kafka_2.13:{version} (exit "
                                    f"{result.returncode}): {' '.join(cmd)}\n{(result.stdout + result.stderr)[-2000:]}")
        (partial / ".complete").write_text(f"{version}\n")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


#: Small heaps and a fast-starting JVM: two cores, several brokers, tests that do not need C2's peak speed.
JVM_FLAGS = ("-Xmx384m", "-Xms128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
             "-XX:-UsePerfData", "-Djava.awt.headless=true")

LOG4J2 = """\
status = error
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c{1})%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = info
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = info
"""


def cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def kafka_api_versions_probe(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if a Kafka ApiVersions v0 request gets a response (no Kafka client needed)."""
    client_id = b"forge-probe"
    # api_key=18 (ApiVersions), api_version=0, correlation_id=1, client_id
    request = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big")
    request += len(client_id).to_bytes(2, "big") + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(len(request).to_bytes(4, "big") + request)
            header = s.recv(8)
    except OSError:
        return False
    return len(header) >= 8 and int.from_bytes(header[4:8], "big") == 1
