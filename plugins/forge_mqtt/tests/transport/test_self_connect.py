"""The transport retrying a broker that is not listening yet connects to itself (TCP simultaneous open),
refuses that at once, says so, counts it, and connects once Mosquitto listens on the port the
self-connection had: the port is free for the broker to bind.

The self-connections are real (the kernel's), but chosen rather than waited for: paho's TCP connects to the
broker's port bind their socket to the broker's own address first (bind, then connect to the same
address), which is what the kernel does by chance when it hands a retrying client the broker's port from
the ephemeral range (forge_opcua's tests/client/test_self_connect.py shows that happening unforced)."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from forge_core import TransportNotReady
from forge_core.testing import find_free_port
from forge_core.transport import SelfConnectionError

from forge_mqtt import MqttTransport
from forge_mqtt.testing import MosquittoServer, SelfConnectingSockets
from forge_mqtt.transport import paho_adapter

pytestmark = pytest.mark.servers


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "connected to itself" in r.getMessage()]


def assert_port_free(port: int) -> None:
    with socket.socket() as plain:  # no SO_REUSEADDR: not even a TIME_WAIT may be left on the port
        plain.bind(("127.0.0.1", port))


def test_paho_connects_over_the_method_the_guard_takes_over() -> None:
    """Pins paho's private hook: reconnect() makes its TCP connection in _create_socket_connection, before
    TLS and before CONNECT. If paho renames or bypasses it, this fails (and the guard would be skipped)."""
    assert callable(getattr(mqtt.Client, "_create_socket_connection", None))
    assert issubclass(paho_adapter.client_class(), paho_adapter.GuardedClient)
    port = find_free_port()
    client = paho_adapter.client_class()(mqtt.CallbackAPIVersion.VERSION2, client_id="pin")
    opened: list[Any] = []
    client.on_socket_open = lambda c, u, sock: opened.append(sock)
    with pytest.raises(SelfConnectionError, match=f"connected to itself on 127.0.0.1:{port}"):
        # paho's own bind_port: the socket's source is the address it connects to (a self-connection)
        client.connect("127.0.0.1", port, bind_address="127.0.0.1", bind_port=port)
    assert opened == [] and client.socket() is None  # refused before paho took the socket or sent CONNECT
    assert_port_free(port)


@pytest.mark.slow
def test_a_transport_started_before_its_broker_refuses_connections_to_itself_and_connects_when_it_listens(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, kit: Any) -> None:
    port = find_free_port()
    forced = SelfConnectingSockets(port, times=2)
    monkeypatch.setattr(mqtt, "socket", forced)

    async def body() -> None:
        transport = MqttTransport("edge", host="127.0.0.1", port=port, data_dir=tmp_path / "edge",
                                  client_id="self-connect-edge")
        for _ in range(2):  # what the plant's start does: retry a transport that is not ready
            with pytest.raises(TransportNotReady, match=f"connected to itself on 127.0.0.1:{port}"):
                await transport.connect()
            assert_port_free(port)
        assert forced.made == [("127.0.0.1", port)] * 2  # they did connect: to themselves
        assert transport.health().stats["self_connections"] == 2
        with MosquittoServer(port=port, base_dir=tmp_path / "broker") as broker:  # binds the port they had
            assert broker.port == port
            await transport.connect()
            inbox = kit.Collector()
            await transport.subscribe("line/+/count", inbox)
            await transport.publish("line/m1/count", kit.envelope({"n": 1}))
            await inbox.wait_for(1)
            assert transport.health().stats["self_connections"] == 2
            await transport.close()

    with caplog.at_level(logging.WARNING, logger="forge.transport.mqtt"):
        asyncio.run(body())
    lines = said(caplog)
    assert len(lines) == 2, lines
    assert lines[0].startswith("transport 'edge': ") and f"127.0.0.1:{port}" in lines[0], lines[0]
    assert "closed at once" in lines[0] and "retrying" in lines[0], lines[0]


@pytest.mark.slow
def test_a_transport_reconnecting_during_an_outage_refuses_connections_to_itself_and_the_broker_gets_its_port(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, kit: Any) -> None:
    port = find_free_port()
    broker = MosquittoServer(port=port, base_dir=tmp_path / "broker").start()
    forced = SelfConnectingSockets(port, times=0)
    monkeypatch.setattr(mqtt, "socket", forced)

    async def body() -> None:
        transport = kit.make_transport(broker, tmp_path / "edge", "edge")
        await transport.connect()
        inbox = kit.Collector()
        await transport.subscribe("line/+/count", inbox)
        forced.times = 2  # the next two reconnects connect to themselves
        broker.stop()
        await kit.until(lambda: len(forced.made) == 2 and transport.health().stats["self_connections"] == 2, 20,
                        lambda: f"forced {forced.made}, health {transport.health()}")
        assert not transport.health().connected
        assert "connected to itself" in transport.health().detail, transport.health().detail
        broker.start()  # on the same port (the broker's old connections' TIME_WAITs are there: it reuses the address)
        await kit.until(lambda: transport.health().connected, 20, lambda: transport.health().detail)
        await asyncio.sleep(0.2)  # the resubscription's SUBACK
        await transport.publish("line/m2/count", kit.envelope({"n": 2}))
        await inbox.wait_for(1)
        assert transport.health().stats["reconnects"] == 1
        await transport.close()

    try:
        with caplog.at_level(logging.WARNING, logger="forge.transport.mqtt"):
            asyncio.run(body())
    finally:
        broker.close()
    lines = said(caplog)
    assert len(lines) == 2 and all(f"127.0.0.1:{port}" in line for line in lines), lines
