"""forge_core's self-connection check on real kernel self-connections: a socket bound to a free port and
connected to that same address is connected to itself (TCP simultaneous open, what the kernel does by
chance to a client retrying a port in its ephemeral range that nobody listens on yet; forge_opcua's
tests/client/test_self_connect.py shows that happening unforced)."""

from __future__ import annotations

import logging
import socket
import sys

import pytest

from forge_core.testing import find_free_port
from forge_core.transport import SelfConnectionError, refuse_self_connection, reset_on_close, self_connected

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux completes a connect to itself")


def _connected_to_itself() -> tuple[socket.socket, int]:
    port = find_free_port()
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.connect(("127.0.0.1", port))  # nobody listens: the SYN meets itself
    return sock, port


def test_a_self_connection_is_refused_named_and_its_port_left_free_for_the_server(
        caplog: pytest.LogCaptureFixture) -> None:
    sock, port = _connected_to_itself()
    assert self_connected(sock) == ("127.0.0.1", port)
    with socket.socket() as server, pytest.raises(OSError, match="in use"):
        server.bind(("127.0.0.1", port))  # what the server coming up there meets while it lasts
    log = logging.getLogger("forge.test.self_connect")
    with caplog.at_level(logging.WARNING, logger=log.name), pytest.raises(SelfConnectionError) as refused:
        refuse_self_connection(sock, who="transport 'mqtt'", log=log)
    assert isinstance(refused.value, ConnectionRefusedError)  # every client retries it as a refused connect
    assert refused.value.address == ("127.0.0.1", port)
    assert f"connected to itself on 127.0.0.1:{port}" in str(refused.value)
    assert sock.fileno() == -1  # closed
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("transport 'mqtt': the connection to ") and f"127.0.0.1:{port}" in line, line
    assert "closed at once" in line and "retrying" in line, line
    with socket.socket() as server:  # no SO_REUSEADDR: a TIME_WAIT left on the port would refuse this
        server.bind(("127.0.0.1", port))
        server.listen()


def test_without_the_reset_a_closed_self_connection_leaves_the_port_in_time_wait() -> None:
    """Why the reset: a plain close of a self-connection keeps the port (TIME_WAIT) from a server that
    binds without SO_REUSEADDR."""
    sock, port = _connected_to_itself()
    sock.close()
    with socket.socket() as server, pytest.raises(OSError, match="in use"):
        server.bind(("127.0.0.1", port))
    sock, port = _connected_to_itself()
    reset_on_close(sock)
    sock.close()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))


def test_a_connection_to_a_listening_server_passes() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname()) as client:
        assert self_connected(client) is None
        refuse_self_connection(client, who="test", log=logging.getLogger("forge.test"))  # nothing
        client.sendall(b"x")  # still open


def test_sockets_that_cannot_be_self_connected_are_not() -> None:
    with socket.socket() as unconnected:
        assert self_connected(unconnected) is None
    left, right = socket.socketpair()  # AF_UNIX: names are strings (empty), never a TCP self-connection
    with left, right:
        assert self_connected(left) is None
