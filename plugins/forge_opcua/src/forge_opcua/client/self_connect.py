"""A TCP connection to itself, noticed and closed at once (asyncua's side of forge_core's check).

A client that retries a connect to a local port nobody listens on yet, when that port is in the
kernel's ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 by default), can be
given that very port as its source port: its SYN meets itself, and the kernel completes the
connection (TCP simultaneous open). The "connection" has the same local and peer address; it holds
the port, so the server that is coming up there fails to bind ("address already in use"), and the
client talks to itself (asyncua: its own Hello comes back as an unexpected message).

:class:`GuardedClient` checks right after the socket connects, before a byte is sent: on a
self-connection it resets the socket (SO_LINGER 0: no TIME_WAIT left on the port), logs it and
raises :class:`SelfConnectionError`, which the source counts and retries like any refused connect.
The port is held from the SYN to the check, a few microseconds, instead of for the Hello timeout.
The check and the reset are forge_core's (:func:`forge_core.transport.self_connected`,
:func:`~forge_core.transport.reset_on_close`), shared with the MQTT clients; here the socket belongs
to an asyncio transport, which is aborted rather than the socket closed under it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asyncua import Client
from forge_core.transport import SelfConnectionError, reset_on_close
from forge_core.transport import self_connected as socket_self_connected

__all__ = ["GuardedClient", "SelfConnectionError", "close_at_once", "self_connected"]

log = logging.getLogger("forge.opcua.source")


def self_connected(transport: asyncio.BaseTransport) -> tuple[str, int] | None:
    """The address when ``transport``'s socket is connected to itself, else None."""
    sock: Any = transport.get_extra_info("socket")
    return socket_self_connected(sock) if sock is not None else None


def close_at_once(transport: asyncio.BaseTransport) -> None:
    """Close with a reset (SO_LINGER on, 0 s): the port is free at once, no TIME_WAIT left on it."""
    sock: Any = transport.get_extra_info("socket")
    if sock is not None:
        reset_on_close(sock)
    abort = getattr(transport, "abort", None)
    if abort is not None:
        abort()
    else:
        transport.close()


class GuardedClient(Client):
    """asyncua's :class:`~asyncua.Client` that refuses a connection to itself (see the module docstring).

    ``who`` names the owner in the log line (``opcua.source 'plc'``)."""

    who = "opcua client"

    async def connect_socket(self) -> None:
        await super().connect_socket()
        protocol = self.uaclient.protocol
        transport = protocol.transport if protocol is not None else None
        address = self_connected(transport) if transport is not None else None
        if transport is None or address is None:
            return
        close_at_once(transport)
        self.disconnect_socket()
        host, port = address
        log.warning("%s: the connection to %s:%d connected to itself (TCP simultaneous open: nothing listens "
                    "on that port yet, and the kernel gave this client the same port as its source); closed "
                    "at once so the server can listen there; retrying", self.who, host, port)
        raise SelfConnectionError(address)
