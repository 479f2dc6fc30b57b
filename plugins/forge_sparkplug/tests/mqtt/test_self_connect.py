"""A Sparkplug client started before its broker listens connects to itself (TCP simultaneous open), refuses
that at once, says so, and connects once Mosquitto listens on the port the self-connection had: the port is
free for the broker to bind (before the guard, paho read its own CONNECT back, closed with 'Protocol error'
and left the port in TIME_WAIT for 60 s, so Mosquitto could not start there).

The self-connections are real (the kernel's), but chosen rather than waited for: paho's TCP connects to the
broker's port bind their socket to the broker's own address first, which is what the kernel does by chance
when it hands a retrying client the broker's port from the ephemeral range (forge_opcua's
tests/client/test_self_connect.py shows that happening unforced)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from forge_core.testing import find_free_port
from forge_core.transport import SelfConnectionError
from forge_mqtt import MqttSettings
from forge_mqtt.testing import MosquittoServer, SelfConnectingSockets

from forge_sparkplug.mqtt.client import Received, SparkplugClient
from forge_sparkplug.mqtt.guard import GuardedPaho

pytestmark = [pytest.mark.servers, pytest.mark.timeout(90)]


def test_paho_connects_over_the_method_the_guard_takes_over() -> None:
    """Pins paho's private hook: connect() makes its TCP connection in _create_socket_connection, before TLS
    and before CONNECT. If paho renames or bypasses it, this fails (and the guard would be skipped)."""
    assert callable(getattr(mqtt.Client, "_create_socket_connection", None))
    port = find_free_port()
    client = GuardedPaho(mqtt.CallbackAPIVersion.VERSION2, client_id="pin")
    opened: list[Any] = []
    client.on_socket_open = lambda c, u, sock: opened.append(sock)
    with pytest.raises(SelfConnectionError, match=f"connected to itself on 127.0.0.1:{port}"):
        # paho's own bind_port: the socket's source is the address it connects to (a self-connection)
        client.connect("127.0.0.1", port, bind_address="127.0.0.1", bind_port=port)
    assert opened == [] and client.socket() is None and client.self_connections == 1
    with socket.socket() as plain:  # no SO_REUSEADDR: not even a TIME_WAIT is left on the port
        plain.bind(("127.0.0.1", port))


async def _nothing() -> None:
    return None


def test_a_client_started_before_its_broker_refuses_connections_to_itself_and_connects_when_it_listens(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    port = find_free_port()
    forced = SelfConnectingSockets(port, times=2)
    monkeypatch.setattr(mqtt, "socket", forced)
    settings = MqttSettings(host="127.0.0.1", port=port, reconnect_min_delay=0.1, reconnect_max_delay=1.0)
    received: list[Received] = []

    async def on_messages(batch: list[Received]) -> None:
        received.extend(batch)

    async def until(condition: Any, what: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"not within {timeout:g} s: {what()}"
            await asyncio.sleep(0.05)

    async def body() -> None:
        client = SparkplugClient(settings, "edge-self", name="sparkplug.edge_node 'edge'", will=lambda: None,
                                 on_connect=_nothing, on_disconnect=_nothing, on_messages=on_messages)
        paho = client.client
        assert isinstance(paho, GuardedPaho)
        client.start()  # paho's thread connects, and retries after its reconnect delay
        try:
            await until(lambda: paho.self_connections == 2, lambda: f"forced {forced.made}, "
                        f"refused {paho.self_connections}")
            assert forced.made == [("127.0.0.1", port)] * 2  # they did connect: to themselves
            assert not client.connected
            with MosquittoServer(port=port, base_dir=tmp_path / "broker") as broker:  # binds the port they had
                assert broker.port == port
                await until(lambda: client.connected, lambda: f"connected {client.connected}")
                client.subscribe([("spBv1.0/line1/#", 0)])
                assert await client.probe()  # the broker read the SUBSCRIBE before this UNSUBSCRIBE
                assert await client.publish_written("spBv1.0/line1/NCMD/x", b"hello", qos=1)
                await until(lambda: bool(received), lambda: f"received {received}")
                assert [r.body for r in received] == [b"hello"]
                await client.stop()
        finally:
            client.drop()
        assert paho.self_connections == 2 and client.connects == 1

    with caplog.at_level(logging.WARNING, logger="forge.sparkplug.mqtt"):
        asyncio.run(body())
    lines = [r.getMessage() for r in caplog.records if "connected to itself" in r.getMessage()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("sparkplug.edge_node 'edge': client 'edge-self': the connection to ")
    assert f"127.0.0.1:{port}" in lines[0] and "closed at once" in lines[0] and "retrying" in lines[0], lines[0]
