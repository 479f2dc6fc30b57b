"""A TCP connection to itself, noticed and closed at once: the check every TCP client of Forge makes.

A client that retries a connect to a local port nobody listens on yet, when that port is in the
kernel's ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 by default), can be
given that very port as its source port: its SYN meets itself and the kernel completes the connection
(TCP simultaneous open). The "connection" has the same local and peer address; it holds the port, so
the server coming up there fails to bind ("address already in use"), and the client talks to itself
(an MQTT client reads its own CONNECT, an OPC UA client its own Hello).

The check belongs right after the TCP connect, before a byte is sent (and before a TLS handshake):
:func:`refuse_self_connection` resets a self-connected socket (SO_LINGER 0: no TIME_WAIT is left on
the port), logs a warning naming the address and raises :class:`SelfConnectionError`, a
:class:`ConnectionRefusedError`, which every client already retries as a refused connect. The port is
held from the SYN to the check, a few microseconds. docs/transports/self-connection.md says which
client does it where.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from typing import Protocol

__all__ = ["SelfConnectionError", "refuse_self_connection", "reset_on_close", "self_connected"]


class _Socket(Protocol):
    """What the check needs of a socket: :class:`socket.socket`, asyncio's ``TransportSocket``."""

    def getsockname(self) -> object: ...

    def getpeername(self) -> object: ...

    def setsockopt(self, level: int, option: int, value: bytes, /) -> None: ...


class SelfConnectionError(ConnectionRefusedError):
    """The socket connected to itself (local address == peer address): closed with a reset, to be retried
    like a refused connect (nothing listens there yet). ``address`` is the (host, port) it held."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        host, port = address
        super().__init__(f"connected to itself on {host}:{port} (nothing listens there yet; closed at once, retrying)")


def self_connected(sock: _Socket) -> tuple[str, int] | None:
    """The (host, port) when ``sock`` is connected to itself, else None (also when it is not connected)."""
    try:
        local, peer = sock.getsockname(), sock.getpeername()
    except OSError:  # not connected (any more): nothing holds a port to itself
        return None
    if not isinstance(local, tuple) or not isinstance(peer, tuple) or local[:2] != peer[:2]:
        return None  # AF_UNIX names are strings: a Unix socket cannot connect to itself this way
    return str(local[0]), int(local[1])


def reset_on_close(sock: _Socket) -> None:
    """SO_LINGER on, 0 s: closing ``sock`` sends a reset and leaves no TIME_WAIT, so the port is free at once."""
    with contextlib.suppress(OSError):  # already closed: nothing holds the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def refuse_self_connection(sock: socket.socket, *, who: str, log: logging.Logger) -> None:
    """Nothing if ``sock`` is connected to a peer. Connected to itself: close it with a reset, log a warning
    (``who`` names the client, e.g. ``transport 'mqtt'``) and raise :class:`SelfConnectionError`."""
    address = self_connected(sock)
    if address is None:
        return
    reset_on_close(sock)
    sock.close()
    host, port = address
    log.warning("%s: the connection to %s:%d connected to itself (TCP simultaneous open: nothing listens on that "
                "port yet, and the kernel gave this client the same port as its source); closed at once so the "
                "server can listen there; retrying", who, host, port)
    raise SelfConnectionError(address)
