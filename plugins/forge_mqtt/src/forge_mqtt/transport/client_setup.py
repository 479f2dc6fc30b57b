"""A paho client for a :class:`~forge_mqtt.transport.connection.Connection`: protocol, manual
acknowledgements, in-flight window, credentials, TLS, and the connection's callbacks."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt

from forge_mqtt.transport import paho_adapter

if TYPE_CHECKING:
    from forge_mqtt.settings import MqttSettings
    from forge_mqtt.transport.connection import Connection

__all__ = ["apply_credentials", "make_client"]


def make_client(conn: Connection) -> paho_adapter.GuardedClient:
    """A new client with ``conn``'s settings, calling ``conn`` back (``conn.tls_context`` set with TLS)."""
    s = conn.settings
    # FastClient: paho with a one-pass decoder for received PUBLISH (paho's takes ~270 µs for the
    # CloudEvents properties); plain paho if this paho has no _handle_publish to take over.
    client = paho_adapter.client_class()(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=conn.client_id,
        protocol=mqtt.MQTTv5 if s.is_v5 else mqtt.MQTTv311,
        clean_session=None if s.is_v5 else s.clean,
        manual_ack=True,
        reconnect_on_failure=False,  # reconnect() does, paho has no thread of its own
    )
    client.max_inflight_messages_set(s.max_inflight)
    client.max_queued_messages_set(0)  # the publisher's own slots bound the queue
    client.connect_timeout = s.connect_timeout
    client.suppress_exceptions = True
    context = apply_credentials(client, s)
    if context is not None:
        conn.tls_context = context
    client.on_pre_connect = conn._on_pre_connect
    client.on_connect = conn._on_connect
    client.on_disconnect = conn._on_disconnect
    client.on_message = conn._on_message
    client.on_publish = conn._on_publish
    client.on_subscribe = conn._on_subscribe
    client.on_socket_open = conn._on_socket_open
    client.on_socket_close = conn._on_socket_close
    client.on_socket_register_write = conn._on_socket_register_write
    client.on_socket_unregister_write = conn._on_socket_unregister_write
    paho_adapter.guard(client, f"transport {conn.name!r}", conn.stats)  # no connection to itself
    return client


def apply_credentials(client: mqtt.Client, settings: MqttSettings) -> ssl.SSLContext | None:
    """The settings' username and password, and with ``tls`` their TLS (CA file, client certificate and key,
    ``tls_insecure``), on a paho ``client`` before it connects; returns the TLS context, or None without TLS.
    Every paho client of a Forge plugin built from :class:`~forge_mqtt.MqttSettings` takes them here."""
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if not settings.tls:
        return None
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.cert_file and settings.key_file:
        context.load_cert_chain(settings.cert_file, settings.key_file, settings.key_password)
    client.tls_set_context(context)
    client.tls_insecure_set(settings.tls_insecure)
    return context
