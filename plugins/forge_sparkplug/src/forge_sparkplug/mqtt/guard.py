"""paho's client, refusing a TCP connection to itself (forge_core.transport.self_connect).

A Sparkplug client started before its broker listens retries the broker's port; on this host, with the port
in the kernel's ephemeral range, a retry can be handed that very port as its source and connect to itself
(TCP simultaneous open). Left alone, paho sent CONNECT to itself, read it back ("Protocol error") and closed,
leaving the port in TIME_WAIT for 60 s: Mosquitto could not listen there meanwhile.

The check runs in paho's ``_create_socket_connection`` (private: its TCP connect, which ``reconnect`` calls
before the TLS handshake and before CONNECT is written; paho's public ``on_socket_open`` comes after the
handshake and cannot fail the connect). tests/mqtt/test_self_connect.py pins it. A self-connection is reset
(no TIME_WAIT), logged with the address and raised as :class:`~forge_core.transport.SelfConnectionError`, an
OSError: paho's network thread retries it after its own reconnect delay, as any refused connect.
"""

from __future__ import annotations

import logging
import socket

import paho.mqtt.client as mqtt
from forge_core.transport import SelfConnectionError, refuse_self_connection

__all__ = ["GuardedPaho"]

log = logging.getLogger("forge.sparkplug.mqtt")


class GuardedPaho(mqtt.Client):
    """paho's :class:`~paho.mqtt.client.Client` that refuses a connection to itself; ``who`` names the owner in
    the warning, ``self_connections`` counts the refusals."""

    who = "sparkplug mqtt client"
    self_connections = 0

    def _create_socket_connection(self) -> socket.socket:
        sock = super()._create_socket_connection()
        try:
            refuse_self_connection(sock, who=self.who, log=log)
        except SelfConnectionError:
            self.self_connections += 1
            raise
        return sock
