"""A TCP connection to itself, made by the kernel for real: a connect retried to a free port in the
ephemeral range until the kernel hands the client that very port as its source (TCP simultaneous
open). ``self_connected`` sees it; ``close_at_once`` frees the port for a server at once."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

from forge_opcua.client.self_connect import close_at_once, self_connected

RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
pytestmark = pytest.mark.skipif(sys.platform != "linux" or not RANGE.exists(),
                                reason="the ephemeral range and its port choice are Linux's")


def _free_even_port() -> int:
    """A free port in the ephemeral range; even, because Linux's connect tries even source ports first."""
    low, high = map(int, RANGE.read_text().split())
    for port in range(low + 2000 + (low % 2), high - 2000, 2):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free even port in the ephemeral range {low}-{high}")


def _connect_until_self_connected(port: int, attempts: int) -> socket.socket:
    """Connect to ``port`` (nobody listens there) until a connect succeeds: to itself. Bounded."""
    refused = 0
    for _ in range(attempts):
        sock = socket.socket()
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            sock.close()
            refused += 1
            continue
        return sock
    pytest.fail(f"no self-connection to 127.0.0.1:{port} in {attempts} connects ({refused} refused)")


def test_a_retried_connect_to_a_free_ephemeral_port_connects_to_itself_and_is_freed_at_once() -> None:
    port = _free_even_port()
    # each refused connect moves the kernel's pick for this destination on by a few ports, so within
    # one pass over the range (~14,000 even ports, well under a second) it picks the port itself
    sock = _connect_until_self_connected(port, attempts=70_000)
    assert sock.getsockname() == sock.getpeername() == ("127.0.0.1", port)
    # the server that comes up now cannot have its port
    with socket.socket() as server, pytest.raises(OSError, match="in use"):
        server.bind(("127.0.0.1", port))

    async def check_and_close() -> tuple[str, int] | None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=sock)
        found = self_connected(transport)
        close_at_once(transport)
        await asyncio.sleep(0)  # the transport closes its socket on the next turn of the loop
        return found

    assert asyncio.run(check_and_close()) == ("127.0.0.1", port)
    with socket.socket() as server:  # no SO_REUSEADDR: a TIME_WAIT left on the port would refuse this
        server.bind(("127.0.0.1", port))
        server.listen()


def test_a_connection_to_a_listening_server_is_not_a_self_connection() -> None:
    async def scenario() -> tuple[str, int] | None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, "127.0.0.1", port)
            found = self_connected(transport)
            transport.close()
            return found
        finally:
            server.close()

    assert asyncio.run(scenario()) is None
