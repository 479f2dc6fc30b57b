"""Fixtures for forge_mqtt's tests: transports on the shared Mosquitto, private brokers for outage
tests, and a CA with server and client certificates for TLS (made with openssl)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from forge_core import Envelope, IdGenerator, RawMessage
from forge_core.testing import which_or_skip
from forge_core.transport import Decoder

from forge_mqtt import MqttTransport
from forge_mqtt.testing import MosquittoServer

pytestmark = pytest.mark.servers


def make_transport(broker: MosquittoServer, data_dir: Path, name: str = "mqtt", **settings: Any) -> MqttTransport:
    """A transport on ``broker`` with a unique client id and its files in ``data_dir``."""
    settings.setdefault("client_id", f"test-{name}-{uuid.uuid4().hex[:8]}")
    settings.setdefault("reconnect_min_delay", 0.1)
    settings.setdefault("reconnect_max_delay", 1.0)
    return MqttTransport(name, host=broker.host, port=broker.port, data_dir=data_dir, **settings)


def envelope(payload: Any, *, type_: str = "test.message", key: str | None = None, source: str = "test") -> Envelope:
    return Envelope(type_, payload, source, uuid.uuid4().hex, time.time(), key, 1, {})


class Collector:
    """An async callback that decodes what it gets (bare-name headers) and keeps it."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Envelope]] = []
        self._decoder = Decoder(prefix="", ids=IdGenerator(), clock_time=time.time)

    async def __call__(self, topic: str, message: Envelope | RawMessage) -> None:
        assert isinstance(message, RawMessage)
        self.items.append((topic, self._decoder.decode(topic, message.body, message.headers)))

    @property
    def payloads(self) -> list[Any]:
        return [e.payload for _, e in self.items]

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        await until(lambda: len(self.items) >= count, timeout, lambda: f"{len(self.items)} of {count} messages")


async def until(condition: Callable[[], bool], timeout: float, what: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {what()}")
        await asyncio.sleep(0.02)


class Kit:
    """The helpers above, as a fixture: test modules cannot import conftest under importlib mode."""

    make_transport = staticmethod(make_transport)
    envelope = staticmethod(envelope)
    until = staticmethod(until)
    Collector = Collector


@pytest.fixture
def kit() -> type[Kit]:
    return Kit


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A private Mosquitto that a test may stop and start (same port)."""
    with MosquittoServer(base_dir=tmp_path / "broker") as server:
        yield server


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing of ours


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([which_or_skip("openssl"), *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", str(key), "-out", str(cert), cwd=directory)
    return cert, key


def _issue(directory: Path, name: str, ca: tuple[Path, Path], *, server: bool) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr),
             cwd=directory)
    ext = directory / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else "extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(cert), cwd=directory)
    return cert, key


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("certs")
    ca = _make_ca(directory, "forge-test-ca")
    other = _make_ca(directory, "other-ca")
    server = _issue(directory, "broker", ca, server=True)
    client = _issue(directory, "plant-client", ca, server=False)
    return Certs(ca[0], server[0], server[1], client[0], client[1], other[0])
