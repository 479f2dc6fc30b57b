"""``MqttTransport``: paho-mqtt 2.x under the Forge transport contract, composed of a
:class:`~forge_mqtt.transport.connection.Connection` (the client on the loop, reconnect), a
:class:`~forge_mqtt.transport.publisher.Publisher`, a :class:`~forge_mqtt.transport.subscriber.Subscriber`
and its :class:`~forge_mqtt.transport.certificates.Certificates`; and the registry's factory.

Guarantees (QoS 1; see docs/transports/mqtt.md for the full statement): at most ``max_inflight``
publishes wait for a PUBACK, publishes made while disconnected wait in the durable outbox, and a
received message is acknowledged only after every local callback returned or gave up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from forge_core import Clock, Envelope, RawMessage, RealClock, TransportClosed, TransportError, TransportNotReady
from forge_core.transport import DeliveryGuarantee, Health, MessageCallback, Subscription, Transport
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from forge_mqtt.settings import MqttSettings
from forge_mqtt.transport.certificates import Certificates
from forge_mqtt.transport.connection import PERMANENT_REFUSALS, Connection
from forge_mqtt.transport.publisher import Publisher
from forge_mqtt.transport.subscriber import Subscriber
from forge_mqtt.transport.tls_probe import refusal_alert

if TYPE_CHECKING:
    from forge_core.transport import TransportContext

__all__ = ["MqttRefused", "MqttTransport", "factory"]

log = logging.getLogger("forge.transport.mqtt")


class MqttRefused(TransportError):
    """The broker answered CONNACK with a refusal that retrying will not fix (bad password,
    not authorised, client id refused). ``reason`` is the broker's reason, ``code`` its number."""

    def __init__(self, message: str, *, broker: str, reason: str, code: int) -> None:
        self.broker = broker
        self.reason = reason
        self.code = code
        super().__init__(message)


class MqttTransport(Transport):
    """MQTT 5 (or 3.1.1) transport; ``MqttTransport(name, host=..., port=..., data_dir=...)``."""

    type_name = "mqtt"
    #: CloudEvents MQTT binding: attributes are MQTT 5 user properties with bare names.
    header_prefix = ""

    def __init__(
        self,
        name: str = "mqtt",
        settings: MqttSettings | None = None,
        *,
        clock: Clock | None = None,
        data_dir: Path | str | None = None,
        plant: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(name)
        if settings is None:
            settings = MqttSettings.load(options, where=f"transports.{name}.settings")
        elif options:
            raise TypeError(f"transport {name!r}: pass settings or keyword options, not both")
        self.settings = settings
        self.guarantee = DeliveryGuarantee.AT_LEAST_ONCE if settings.qos == 1 else DeliveryGuarantee.AT_MOST_ONCE
        self.clock = clock or RealClock()
        self.data_dir = Path(data_dir) if data_dir is not None else Path(".forge")
        if plant:
            default_id = f"forge-{plant}-{name}" + (f"-{settings.instance}" if settings.instance else "")
        else:
            default_id = f"forge-{name}-{settings.instance or uuid.uuid4().hex[:8]}"
        self.client_id = settings.client_id or default_id
        self.source = settings.source or self.client_id
        self.broker = f"{settings.host}:{settings.port}"
        self.stats: dict[str, int] = {
            "published": 0, "outboxed": 0, "replayed": 0, "delivered": 0, "redelivered": 0,
            "undeliverable": 0, "reconnects": 0, "refused_by_broker": 0, "sessions_resumed": 0,
            "stale_subscription": 0, "too_large": 0,
        }
        self.connection = Connection(name, settings, client_id=self.client_id, broker=self.broker, stats=self.stats)
        self.publisher = Publisher(self.connection, clock=self.clock, data_dir=self.data_dir)
        self.subscriber = Subscriber(self.connection, self._undeliverable)
        self.certificates = Certificates(name, settings, client_id=self.client_id, source=self.source,
                                         clock=self.clock, data_dir=self.data_dir)
        self.connection.bind(self.publisher, self.subscriber, self.certificates)
        # The bus calls the publisher's plain function instead of awaiting publish(): no coroutine
        # per message while the in-flight window has room (Transport.direct_publish); not if a
        # subclass changed publish.
        if type(self).publish is MqttTransport.publish:
            self.direct_publish = self.publisher.direct_publish
        self.death_topic = self.certificates.death_topic
        self.birth_topic = self.certificates.birth_topic

    @property
    def client(self) -> mqtt.Client | None:
        """The paho client of the current connection (diagnostics and tests)."""
        return self.connection.client

    def _undeliverable(self, topic: str, raw: RawMessage, error: BaseException) -> None:
        if self.on_undeliverable is not None:
            self.on_undeliverable(topic, raw, error)

    async def connect(self) -> None:
        """Connect and wait for CONNACK; TransportNotReady if the broker cannot be reached yet,
        :class:`MqttRefused` if it refuses for a reason retrying will not fix."""
        conn, s = self.connection, self.settings
        if conn.closed:
            raise TransportClosed(f"transport {self.name!r} is closed")
        if conn.client is not None and conn.connected:
            return
        if s.outbox:
            self.publisher.open_outbox()
        self.certificates.load()
        client = conn.start()
        assert conn.connack is not None
        props = None
        kwargs: dict[str, Any] = {}
        if s.is_v5:
            props = Properties(PacketTypes.CONNECT)
            if s.session_expiry:
                props.SessionExpiryInterval = s.session_expiry
            # Persistent session: never clean (Mosquitto 2.0 restores a v5 session after its own restart
            # only if it was not begun with clean start); otherwise clean on every connect.
            kwargs["clean_start"] = s.clean if not (s.clean and s.persistent) else mqtt.MQTT_CLEAN_START_FIRST_ONLY
        try:
            await asyncio.to_thread(client.connect, s.host, s.port, s.keepalive, properties=props, **kwargs)
        except ssl.SSLError as exc:
            conn.client = None
            raise TransportError(f"transport {self.name!r}: TLS handshake with MQTT broker {self.broker} "
                                 f"failed: {exc}") from None
        except (OSError, ValueError) as exc:
            conn.client = None
            raise TransportNotReady(f"transport {self.name!r}: cannot reach MQTT broker {self.broker}: "
                                    f"{exc}") from None
        conn.schedule_misc()
        outcome: ReasonCode | str
        try:
            async with asyncio.timeout(s.connect_timeout):  # not wait_for: it can swallow a cancel on 3.11
                outcome = await asyncio.shield(conn.connack)
        except TimeoutError:
            outcome = f"no CONNACK within {s.connect_timeout:g}s"
        if isinstance(outcome, ReasonCode) and not outcome.is_failure:
            return
        await conn.abandon(client)
        if (conn.tls_alert is None and s.cert_file and conn.tls_context is not None and isinstance(outcome, str)
                and outcome.startswith("connection closed")):  # a refused certificate's alert may have been lost
            conn.tls_alert = await refusal_alert(s.host, s.port, conn.tls_context, wait=min(1.0, s.connect_timeout))
        if conn.tls_alert is not None:
            mine = f"client certificate {s.cert_file}" if s.cert_file else "no client certificate (cert_file unset)"
            raise TransportError(f"transport {self.name!r}: MQTT broker {self.broker} ended the TLS session before "
                                 f"CONNACK with the alert {conn.tls_alert!r} ({mine}, client id {self.client_id!r})")
        if s.tls and not s.cert_file and isinstance(outcome, str) and outcome.startswith("connection closed"):
            # TLS 1.3: the broker's 'certificate required' alert comes after the client's handshake is done, and
            # paho may see the closed socket before it reads the alert: say the likely cause either way
            raise TransportNotReady(f"transport {self.name!r}: MQTT broker {self.broker} closed the TLS session "
                                    f"before CONNACK with no client certificate (cert_file unset): a broker that "
                                    f"requires one does so ({outcome}; client id {self.client_id!r})")
        if isinstance(outcome, ReasonCode):
            code = int(outcome.value)
            message = (f"transport {self.name!r}: MQTT broker {self.broker} refused the connection of "
                       f"client {self.client_id!r}: {outcome} (CONNACK reason code {code})")
            if code in PERMANENT_REFUSALS:
                hint = "; check username/password and the broker's ACL" if code in (0x86, 0x87, 0x8C) else ""
                raise MqttRefused(message + hint, broker=self.broker, reason=str(outcome), code=code)
            raise TransportNotReady(message)
        raise TransportNotReady(f"transport {self.name!r}: MQTT broker {self.broker}: {outcome}")

    async def publish(self, topic: str, envelope: Envelope) -> None:
        await self.publisher.publish(topic, envelope)

    async def subscribe(self, pattern: str, callback: MessageCallback, *, group: str | None = None,
                        owner: str | None = None) -> Subscription:
        return await self.subscriber.subscribe(pattern, callback, group=group, owner=owner)

    def health(self) -> Health:
        conn = self.connection
        connected = conn.connected and not conn.closed
        if conn.closed:
            detail = "closed"
        elif connected:
            detail = f"connected to {self.broker} as {self.client_id}"
        elif conn.client is None:
            detail = f"not connected to {self.broker}"
        else:
            detail = f"reconnecting to {self.broker}" + (f" ({conn.last_error})" if conn.last_error else "")
        outbox = self.publisher.outbox
        return Health(connected=connected, detail=detail, stats={
            **self.stats,
            "connected": connected,
            "inflight": len(self.publisher.pending),
            "outbox_depth": outbox.depth if outbox is not None else 0,
            "inbox": len(self.subscriber.inbox),
            "inbox_age": round(self.subscriber.backlog_age(), 3),
            "session_seq": self.certificates.seq,
        })

    def backlog_age(self) -> float:
        return self.subscriber.backlog_age()

    def detach(self) -> None:
        """The process is stopping: with a persistent session, cancelled subscriptions stay at the
        broker (no UNSUBSCRIBE), so messages published until the next start are queued, not lost."""
        self.subscriber.keep_session = True

    async def close(self) -> None:
        """Wait up to ``drain_timeout`` for PUBACKs, publish the death certificate, disconnect
        cleanly (so the broker does not send the Will) and close the outbox."""
        conn = self.connection
        if conn.closed:
            return
        conn.closed = True
        client = conn.client
        self.publisher.stop_replay()
        deadline = time.monotonic() + self.settings.drain_timeout
        if client is not None:
            await self.publisher.drain(deadline)
            if self.certificates.enabled and conn.connected:
                await self._publish_death(client, max(0.5, deadline - time.monotonic()))
        self.publisher.stash_pending()
        if client is not None:
            await conn.disconnect(client)
        with conn.lock:
            conn.connected = False
        conn.cancel_tasks()
        self.subscriber.close()
        self.publisher.close()
        conn.client = None

    async def _publish_death(self, client: mqtt.Client, timeout: float) -> None:
        waiter = self.publisher.waiter(self.certificates.publish_death(client).mid)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            log.warning("transport %s: death certificate not acknowledged by %s within %.1fs",
                        self.name, self.broker, timeout)

    def drop_connection(self) -> None:
        """Close the socket under paho without DISCONNECT, as a network failure would (tests)."""
        client = self.connection.client
        if client is not None:
            sock = client.socket()
            if isinstance(sock, socket.socket):  # plain or TLS (ssl.SSLSocket is one)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def factory(name: str, settings: MqttSettings, context: TransportContext) -> MqttTransport:
    """Registry factory: the runtime built ``settings`` from ``transports.<name>.settings`` (defaults filled)."""
    return MqttTransport(name, settings, clock=context.clock, data_dir=context.data_dir, plant=context.plant)
