"""The MQTT transport: paho-mqtt 2.x under the Forge :class:`~forge_core.transport.base.Transport` contract.

Threads: none of its own. paho runs on the asyncio loop through its external-loop interface: the
socket is watched with ``loop.add_reader``/``add_writer`` (paho's ``on_socket_open``/``close``/
``register_write``/``unregister_write``), readable and writable events call paho's packet reader
and writer, a one-second timer calls ``loop_misc`` (keepalive), and the transport reconnects with
backoff itself. Only the blocking TCP/TLS connect runs in a worker thread. What paho hands over
while reading (messages, PUBACKs, SUBACKs) is queued and processed once per read burst.

Guarantees (QoS 1; see docs/transports/mqtt.md for the full statement):

* outgoing: at most ``max_inflight`` publishes wait for a PUBACK; paho keeps them and resends them
  after a reconnect. Publishes made while disconnected go to the durable outbox (SQLite) and are
  replayed in order after the reconnect; each leaves the outbox only after its PUBACK.
* incoming: the broker's copy is acknowledged (manual PUBACK) only after every local callback
  returned, or after one gave up: a raising callback gets the message again, locally, up to
  ``max_redeliveries`` times, then the message is reported undeliverable (dead letter) and
  acknowledged. A message whose PUBACK was never sent is redelivered by the broker only if the
  session survives (``session_expiry`` > 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from forge_core import Clock, Envelope, RawMessage, RealClock, TransportClosed, TransportError, TransportNotReady
from forge_core.tactics import Outbox
from forge_core.transport import (
    CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    DeliveryGuarantee,
    Health,
    MessageCallback,
    Subscription,
    Transport,
    encode,
    encode_structured,
    matches,
    validate_pattern,
    validate_topic,
)
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from forge_mqtt.publish_decoder import FastClient
from forge_mqtt.settings import MqttSettings

if TYPE_CHECKING:
    from forge_core.transport import TransportContext

__all__ = ["BIRTH_TOPIC", "DEATH_TOPIC", "DeathWatch", "MqttRefused", "MqttTransport", "factory"]

log = logging.getLogger("forge.transport.mqtt")

DEATH_TOPIC = "forge/death"
BIRTH_TOPIC = "forge/birth"
DEATH_TYPE = "forge.death"
BIRTH_TYPE = "forge.birth"

#: CONNACK reason codes that retrying will not fix: credentials, identity, protocol, bans.
_PERMANENT_REFUSALS = {0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C, 0x90, 0x95, 0x9A}

UndeliverableCallback = Callable[[str, RawMessage, BaseException], None]


class MqttRefused(TransportError):
    """The broker answered CONNACK with a refusal that retrying will not fix (bad password,
    not authorised, client id refused). ``reason`` is the broker's reason, ``code`` its number."""

    def __init__(self, message: str, *, broker: str, reason: str, code: int) -> None:
        self.broker = broker
        self.reason = reason
        self.code = code
        super().__init__(message)


class DeathWatch:
    """Tells a current death certificate from a stale one, as Sparkplug hosts use ``bdSeq``.

    Feed it every ``forge.birth`` and ``forge.death`` payload (``{"source", "seq"}``). A death
    whose ``seq`` is lower than the latest birth of the same source belongs to an older session
    (the broker publishes an old Will when a reconnect takes the session over) and is ignored.
    """

    def __init__(self) -> None:
        self.births: dict[str, int] = {}
        self.alive: dict[str, bool] = {}

    def birth(self, payload: dict[str, Any]) -> None:
        source, seq = str(payload["source"]), int(payload["seq"])
        if seq >= self.births.get(source, -1):
            self.births[source] = seq
            self.alive[source] = True

    def death(self, payload: dict[str, Any]) -> bool:
        """Record a death; True if it is current (the source is now dead), False if stale."""
        source, seq = str(payload["source"]), int(payload["seq"])
        if seq < self.births.get(source, -1):
            return False
        self.alive[source] = False
        return True


class _LocalSub(Subscription):
    """One ``subscribe()`` call: a callback behind a broker subscription."""

    __slots__ = ("callback", "cancelled", "filter", "group", "owner", "pattern", "transport")

    def __init__(self, transport: MqttTransport, pattern: str, callback: MessageCallback, group: str | None,
                 owner: str | None, filter: str) -> None:
        self.transport = transport
        self.pattern = pattern
        self.callback = callback
        self.group = group
        self.owner = owner
        self.filter = filter
        self.cancelled = False

    async def cancel(self) -> None:
        await self.transport._cancel(self)


@dataclass(eq=False)
class _BrokerSub:
    """One subscription at the broker (a filter, ``$share/<group>/`` included), shared by the
    local subscriptions on the same pattern and group."""

    filter: str
    pattern: str
    group: str | None
    ident: int
    qos: int
    locals: list[_LocalSub] = field(default_factory=list)
    turn: int = 0
    confirmed: bool = False  # SUBACKed in the broker's current session

    def pick(self) -> list[_LocalSub]:
        """Every local subscriber, or one in turn when they share a group."""
        if self.group is None or len(self.locals) <= 1:
            return list(self.locals)
        self.turn += 1
        return [self.locals[self.turn % len(self.locals)]]


def _utf8(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


_CONTENT_TYPE_PROPERTY = b"\x03" + _utf8(CONTENT_TYPE)
#: Structured mode: no user properties (an empty header dict, in the outbox too); the content type
#: says what the body is.
_STRUCTURED_HEADERS: dict[str, str] = {}
_STRUCTURED_TYPE_PROPERTY = b"\x03" + _utf8(STRUCTURED_CONTENT_TYPE)


class _PackedProperties(Properties):
    """PUBLISH properties (content type + CloudEvents user properties) packed once, directly.

    paho's generic ``Properties`` spends ~60 µs per message in attribute checks and packing;
    ``_send_publish`` only calls ``pack()``, so this subclass hands it the finished bytes.
    """

    __setattr__ = object.__setattr__  # Properties checks every attribute name against the MQTT list

    def __init__(self, headers: dict[str, str], content_type: bytes = _CONTENT_TYPE_PROPERTY) -> None:
        # no super().__init__: nothing else is read
        self.packetType = PacketTypes.PUBLISH
        parts = [content_type]
        for name, value in headers.items():
            parts.append(b"\x26" + _utf8(name) + _utf8(value))
        body = b"".join(parts)
        self._packed = VariableByteIntegers.encode(len(body)) + body

    def pack(self) -> bytes:
        return self._packed

    def __str__(self) -> str:
        return f"[packed properties, {len(self._packed)} bytes]"


#: MQTT 5 Subscription Identifiers are 1..268,435,455.
_MAX_IDENT = 268_435_455


def _ident_for(filter: str) -> int:
    """A Subscription Identifier derived from the filter, so it means the same filter in every process
    run: a resumed session keeps the subscriptions (and identifiers) of an earlier run."""
    return zlib.crc32(filter.encode()) % _MAX_IDENT + 1


def _safe_level(text: str) -> str:
    return text.replace("/", "_").replace("+", "_").replace("#", "_")


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
        self._structured = settings.content_mode == "structured"
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
        self.death_topic = f"{DEATH_TOPIC}/{_safe_level(self.client_id)}"
        self.birth_topic = f"{BIRTH_TOPIC}/{_safe_level(self.client_id)}"
        #: Called with (topic, raw message, last error) when a callback kept raising; the runtime
        #: turns it into an ``undeliverable`` dead letter.
        self.on_undeliverable: UndeliverableCallback | None = None

        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._net_connected = False
        self._closed = False
        self._ever_connected = False
        self._generation = 0
        self._seq = 0
        self._last_error = ""
        self._connack: asyncio.Future[ReasonCode | str] | None = None

        self._by_filter: dict[str, _BrokerSub] = {}
        self._by_id: dict[int, _BrokerSub] = {}
        self._sub_mids: dict[int, _BrokerSub] = {}
        self._unsubscribe_later: set[str] = set()
        self._stale_idents: set[int] = set()
        self._loop_thread: int | None = None
        self._misc_handle: asyncio.TimerHandle | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._session_present = False
        self._resume_grace_until = 0.0
        self._qos_cache: dict[str, int] = {}

        self._slots = asyncio.Semaphore(settings.max_inflight)
        self._pending_out: dict[int, tuple[str, bytes, dict[str, str], int, bool]] = {}
        self._waiters: dict[int, asyncio.Future[int]] = {}
        self._sub_waiters: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._acks: deque[tuple[int, int]] = deque()
        self._inbox: deque[tuple[int, mqtt.MQTTMessage]] = deque()
        self._control: deque[Callable[[], None]] = deque()
        self._wake_pending = False
        self._draining = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._replay_task: asyncio.Task[None] | None = None
        self._connected_event = asyncio.Event()

        self._outbox: Outbox | None = None
        self.stats: dict[str, int] = {
            "published": 0, "outboxed": 0, "replayed": 0, "delivered": 0, "redelivered": 0,
            "undeliverable": 0, "reconnects": 0, "refused_by_broker": 0, "sessions_resumed": 0,
            "stale_subscription": 0,
        }

    # -- connection ------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect and wait for CONNACK; TransportNotReady if the broker cannot be reached yet,
        :class:`MqttRefused` if it refuses for a reason retrying will not fix."""
        if self._closed:
            raise TransportClosed(f"transport {self.name!r} is closed")
        if self._client is not None and self._net_connected:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        s = self.settings
        if s.outbox:
            self._open_outbox()
        if s.death_certificates:
            self._seq = self._read_seq()
        client = self._make_client()
        self._client = client
        self._connack = self._loop.create_future()
        props = None
        if s.is_v5:
            props = Properties(PacketTypes.CONNECT)
            if s.session_expiry:
                props.SessionExpiryInterval = s.session_expiry
        kwargs: dict[str, Any] = {"properties": props}
        if s.is_v5:
            # Persistent session: never clean (Mosquitto 2.0 restores a v5 session after its own restart
            # only if it was not begun with clean start); otherwise clean on every connect.
            kwargs["clean_start"] = s.clean if not (s.clean and s.persistent) else mqtt.MQTT_CLEAN_START_FIRST_ONLY
        try:
            await asyncio.to_thread(client.connect, s.host, s.port, s.keepalive, **kwargs)
        except ssl.SSLError as exc:
            self._client = None
            raise TransportError(f"transport {self.name!r}: TLS handshake with MQTT broker {self.broker} "
                                 f"failed: {exc}") from None
        except (OSError, ValueError) as exc:
            self._client = None
            raise TransportNotReady(f"transport {self.name!r}: cannot reach MQTT broker {self.broker}: "
                                    f"{exc}") from None
        self._schedule_misc()
        try:
            async with asyncio.timeout(s.connect_timeout):  # not wait_for: it can swallow a cancel on 3.11
                outcome = await asyncio.shield(self._connack)
        except TimeoutError:
            outcome = f"no CONNACK within {s.connect_timeout:g}s"
        if isinstance(outcome, ReasonCode) and not outcome.is_failure:
            return
        await self._abandon(client)
        if isinstance(outcome, ReasonCode):
            code = int(outcome.value)
            message = (f"transport {self.name!r}: MQTT broker {self.broker} refused the connection of "
                       f"client {self.client_id!r}: {outcome} (CONNACK reason code {code})")
            if code in _PERMANENT_REFUSALS:
                hint = "; check username/password and the broker's ACL" if code in (0x86, 0x87, 0x8C) else ""
                raise MqttRefused(message + hint, broker=self.broker, reason=str(outcome), code=code)
            raise TransportNotReady(message)
        raise TransportNotReady(f"transport {self.name!r}: MQTT broker {self.broker}: {outcome}")

    def _open_outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = Outbox(self.data_dir / f"outbox-{self.name}.db", max_bytes=self.settings.outbox_max_bytes,
                                  clock=self.clock)
        return self._outbox

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        v5 = s.is_v5
        # FastClient: paho with a one-pass decoder for received PUBLISH (paho's takes ~270 µs for the
        # CloudEvents properties); plain paho if this paho has no _handle_publish to take over.
        client_class = FastClient if hasattr(mqtt.Client, "_handle_publish") else mqtt.Client
        client = client_class(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else s.clean,
            manual_ack=True,
            reconnect_on_failure=False,  # the transport reconnects (_reconnect), paho has no thread of its own
        )
        client.max_inflight_messages_set(s.max_inflight)
        client.max_queued_messages_set(0)  # the transport's own slots bound the queue
        client.connect_timeout = s.connect_timeout
        client.suppress_exceptions = True
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            context = ssl.create_default_context(cafile=s.ca_file)
            if s.cert_file and s.key_file:
                context.load_cert_chain(s.cert_file, s.key_file, s.key_password)
            client.tls_set_context(context)
            client.tls_insecure_set(s.tls_insecure)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        return client

    async def _abandon(self, client: mqtt.Client) -> None:
        await self._disconnect(client)
        if self._client is client:
            self._client = None
        with self._lock:
            self._net_connected = False

    async def _disconnect(self, client: mqtt.Client, timeout: float = 1.0) -> None:
        """DISCONNECT (so the broker does not send the Will), flushed by the loop; then close the socket."""
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        with contextlib.suppress(Exception):
            client.disconnect()
        deadline = time.monotonic() + timeout
        while client.socket() is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        with contextlib.suppress(Exception):
            client._sock_close()  # not flushed in time, or a refused connection that left its socket open
        if self._misc_handle is not None:
            self._misc_handle.cancel()
            self._misc_handle = None

    # -- paho on the asyncio loop ----------------------------------------------------------------
    def _on_loop(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback`` on the asyncio loop: now if this is its thread, else soon (connect's worker)."""
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            callback(*args)
        else:
            with contextlib.suppress(RuntimeError):  # loop closed
                loop.call_soon_threadsafe(callback, *args)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError):  # PUBLISH and PUBACK are small: no Nagle delay
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._on_loop(self._watch, client, sock)

    def _watch(self, client: mqtt.Client, sock: Any) -> None:
        if client is not self._client or client.socket() is not sock:
            return  # closed again before the loop got here
        assert self._loop is not None
        self._loop.add_reader(sock, self._readable, client)
        if client.want_write():
            self._loop.add_writer(sock, self._writable, client)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._unwatch, sock)

    def _unwatch(self, sock: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(sock)
            with contextlib.suppress(ValueError, OSError):
                loop.remove_writer(sock)

    def _on_socket_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._watch_write, client, sock)

    def _watch_write(self, client: mqtt.Client, sock: Any) -> None:
        if client is self._client and client.socket() is sock and self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.add_writer(sock, self._writable, client)

    def _on_socket_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._unwatch_write, sock)

    def _unwatch_write(self, sock: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(ValueError, OSError):
                loop.remove_writer(sock)

    def _readable(self, client: mqtt.Client) -> None:
        sock = client.socket()
        read = getattr(client, "_packet_read", None)
        if read is None:  # paho without the private reader: its public one (fewer packets per event)
            client.loop_read()
        else:
            # Every complete packet now (paho's loop_read stops after len(in-flight) packets), and for TLS
            # whatever the SSL layer has already decrypted (select does not see it).
            for _ in range(10_000):
                rc = read()
                if rc == mqtt.MQTT_ERR_AGAIN:
                    if sock is None or not getattr(sock, "pending", lambda: 0)():
                        break
                elif rc:
                    client._loop_rc_handle(rc)
                    break
                if client.socket() is None:
                    break
        if client.want_write() and client.socket() is not None:
            client.loop_write()  # PUBACKs and resends queued while reading: out in the same turn

    def _writable(self, client: mqtt.Client) -> None:
        client.loop_write()

    def _schedule_misc(self) -> None:
        if self._misc_handle is None and self._loop is not None and not self._closed:
            self._misc_handle = self._loop.call_later(1.0, self._misc)

    def _misc(self) -> None:
        """Keepalive (PINGREQ, and the broker's silence) once a second."""
        self._misc_handle = None
        client = self._client
        if client is None or self._closed:
            return
        if client.socket() is not None:
            client.loop_misc()
        self._schedule_misc()

    def _start_reconnect(self) -> None:
        if self._closed or self._client is None or not self._ever_connected:
            return
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        """Reconnect with exponential backoff until CONNACK (what paho's own thread would do)."""
        s = self.settings
        delay = s.reconnect_min_delay
        while not self._closed and not self._net_connected:
            await asyncio.sleep(delay)
            client = self._client
            if client is None or self._closed:
                return
            if client.socket() is None:
                try:
                    await asyncio.to_thread(client.reconnect)
                except (OSError, ValueError, ssl.SSLError) as exc:
                    self._last_error = f"reconnect: {exc}"
            if client.socket() is not None:
                deadline = time.monotonic() + s.connect_timeout
                while client.socket() is not None and not self._net_connected and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                if not self._net_connected:
                    with contextlib.suppress(Exception):
                        client._sock_close()
            delay = min(delay * 2, s.reconnect_max_delay)

    def _wake(self) -> None:
        """Something to take over: processed once after the current read burst, not per message."""
        if self._wake_pending:
            return
        self._wake_pending = True
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is listening any more
            if threading.get_ident() == self._loop_thread:
                loop.call_soon(self._kick)
            else:
                loop.call_soon_threadsafe(self._kick)

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        """Every (re)connect attempt: a new session sequence number in the Will (bdSeq)."""
        if not self.settings.death_certificates:
            return
        self._seq += 1
        self._write_seq(self._seq)
        body, props = self._certificate(DEATH_TYPE, PacketTypes.WILLMESSAGE)
        client.will_set(self.death_topic, body, qos=1, retain=False, properties=props)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Any) -> None:
        if reason.is_failure:
            self._last_error = f"CONNACK {reason} ({int(reason.value)})"
            self._control.append(lambda: self._resolve_connack(reason))
            self._wake()
            return
        present = bool(getattr(flags, "session_present", False))
        with self._lock:
            self._net_connected = True
            subs = list(self._by_filter.values())
        self._session_present = present
        if self.settings.death_certificates:
            body, props = self._certificate(BIRTH_TYPE, PacketTypes.PUBLISH)
            client.publish(self.birth_topic, body, qos=1, properties=props)
        for bs in subs:
            if not present:
                bs.confirmed = False  # a new session: the broker has none of them
            if not bs.confirmed:  # a resumed session kept the confirmed ones: no second SUBSCRIBE
                self._subscribe_packet(client, bs)
        for filt in list(self._unsubscribe_later):
            if present and filt not in self._by_filter:
                client.unsubscribe(filt)
        self._unsubscribe_later.clear()
        self._control.append(lambda: self._connected(reason))
        self._wake()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                       properties: Any) -> None:
        with self._lock:
            was = self._net_connected
            self._net_connected = False
            self._generation += 1  # PUBACKs for messages of the old connection would be protocol errors
        if reason.is_failure or was:
            self._last_error = f"disconnected: {reason}"
        self._control.append(lambda: self._disconnected(reason, was))
        self._wake()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.append((self._generation, message))
        self._wake()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any) -> None:
        self._acks.append((mid, int(reason.value)))
        self._wake()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                      properties: Any) -> None:
        self._control.append(lambda: self._resolve_subscribe(mid, reasons))
        self._wake()

    # -- the asyncio loop ----------------------------------------------------------------------------
    def _kick(self) -> None:
        """Take over whatever paho's thread queued (one call per burst)."""
        self._wake_pending = False
        control = self._control
        while control:
            control.popleft()()
        acks = self._acks
        pending = self._pending_out
        waiters = self._waiters
        while acks:
            mid, code = acks.popleft()
            entry = pending.pop(mid, None)
            if entry is not None:
                self._slots.release()
                if code >= 0x80:
                    self.stats["refused_by_broker"] += 1
                    log.error("transport %s: MQTT broker %s refused the publish on %r: reason code %d",
                              self.name, self.broker, entry[0], code)
            waiter = waiters.pop(mid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(code)
        if self._inbox and not self._draining and not self._closed:
            self._draining = True
            self._spawn(self._drain())

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _resolve_connack(self, outcome: ReasonCode | str) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(outcome)

    def _connected(self, reason: ReasonCode) -> None:
        if self._session_present:
            self.stats["sessions_resumed"] += 1
            if not self._ever_connected:
                # A session kept from an earlier run of this process: its queued messages arrive before the
                # components subscribe again; hold them (in order) for a while rather than drop them.
                self._resume_grace_until = time.monotonic() + self.settings.connect_timeout
        if self._ever_connected:
            self.stats["reconnects"] += 1
            log.info("transport %s: reconnected to MQTT broker %s", self.name, self.broker)
        self._ever_connected = True
        self._last_error = ""
        self._resolve_connack(reason)
        self._connected_event.set()
        if self._outbox is not None and self._outbox.depth and not self._closed:
            self._start_replay()

    def _disconnected(self, reason: ReasonCode, was_connected: bool) -> None:
        self._connected_event.clear()
        self._start_reconnect()
        self._resolve_connack(f"connection closed before CONNACK: {reason}")
        if was_connected and not self._closed:
            log.warning("transport %s: lost MQTT broker %s (%s); reconnecting", self.name, self.broker, reason)

    def _resolve_subscribe(self, mid: int, reasons: list[ReasonCode]) -> None:
        bs = self._sub_mids.pop(mid, None)
        if bs is not None and reasons and not any(r.is_failure for r in reasons):
            bs.confirmed = True
        waiter = self._sub_waiters.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(reasons)
        elif any(r.is_failure for r in reasons):
            log.error("transport %s: MQTT broker %s refused a subscription on resubscribe: %s",
                      self.name, self.broker, ", ".join(map(str, reasons)))

    # -- publishing ------------------------------------------------------------------------------------
    async def publish(self, topic: str, envelope: Envelope) -> None:
        if self._closed:
            raise TransportClosed(f"transport {self.name!r} is closed; cannot publish to {topic!r}")
        if not topic or "+" in topic or "#" in topic:
            validate_topic(topic)
        if self._structured:
            body, headers = encode_structured(envelope), _STRUCTURED_HEADERS
        else:
            body, headers = encode(envelope, prefix="")
        qos = self._qos_cache.get(topic)
        if qos is None:
            qos = self._qos_cache[topic] = self.settings.qos_for(topic)
            if len(self._qos_cache) > 10_000:
                self._qos_cache.clear()
        outbox = self._outbox
        if not self._net_connected or (outbox is not None and outbox.depth):
            self._store(topic, body, headers, qos)
            return
        if await self._send(topic, body, headers, qos) is None:
            self._store(topic, body, headers, qos)

    def _store(self, topic: str, body: bytes, headers: dict[str, str], qos: int) -> None:
        """Keep a publish durably until the broker is back (or fail loudly if there is no outbox)."""
        if not self.settings.outbox:
            raise TransportNotReady(f"transport {self.name!r}: not connected to MQTT broker {self.broker} "
                                    f"and the outbox is off; publish to {topic!r} not sent")
        self._open_outbox().put(topic, body, {"h": headers, "q": qos})
        self.stats["outboxed"] += 1
        if self._net_connected and (self._replay_task is None or self._replay_task.done()):
            self._start_replay()

    async def _send(self, topic: str, body: bytes, headers: dict[str, str], qos: int,
                    from_outbox: bool = False) -> int | None:
        """Hand one publish to paho; its mid (QoS 1) or 0 (QoS 0), None if paho refused it."""
        if qos:
            await self._slots.acquire()  # backpressure: never more than max_inflight unacked
        client = self._client
        if client is None or self._closed:
            if qos:
                self._slots.release()
            if self._closed:
                raise TransportClosed(f"transport {self.name!r} is closed; cannot publish to {topic!r}")
            return None
        props = None
        if self.settings.is_v5:
            # Outbox entries keep their headers: an empty dict is a structured-mode message.
            props = _PackedProperties(headers, _STRUCTURED_TYPE_PROPERTY if not headers else _CONTENT_TYPE_PROPERTY)
        info = client.publish(topic, body, qos, properties=props)
        rc = info.rc
        if qos:
            # NO_CONN: paho keeps a QoS 1 message and sends it after the reconnect.
            if rc == mqtt.MQTT_ERR_SUCCESS or rc == mqtt.MQTT_ERR_NO_CONN:
                self._pending_out[info.mid] = (topic, body, headers, qos, from_outbox)
                self.stats["published"] += 1
                return info.mid
            self._slots.release()
            return None
        if rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        self.stats["published"] += 1
        return 0

    def _start_replay(self) -> None:
        if self._replay_task is None or self._replay_task.done():
            self._replay_task = self._spawn(self._replay())

    async def _replay(self) -> None:
        """Send the outbox in order; each message leaves it only after its PUBACK (QoS 1)."""
        outbox = self._outbox
        assert outbox is not None
        loop = asyncio.get_running_loop()
        while not self._closed:
            if not self._net_connected:
                await self._connected_event.wait()
                continue
            batch = outbox.peek(200)
            if not batch:
                return
            sent: list[tuple[int, asyncio.Future[int] | None]] = []
            for msg in batch:
                if not self._net_connected:
                    break
                mid = await self._send(msg.topic, msg.body, msg.headers["h"], msg.headers["q"], True)
                if mid is None:
                    break
                waiter = None
                if mid:
                    waiter = self._waiters[mid] = loop.create_future()
                sent.append((msg.seq, waiter))
            for seq, waiter in sent:
                if waiter is not None:
                    await waiter  # paho resends it after a reconnect, so this resolves eventually
                outbox.ack(seq)
                self.stats["replayed"] += 1
            if len(sent) < len(batch):
                await asyncio.sleep(0.05)

    # -- subscribing -----------------------------------------------------------------------------------
    async def subscribe(self, pattern: str, callback: MessageCallback, *, group: str | None = None,
                        owner: str | None = None) -> Subscription:
        if self._closed:
            raise TransportClosed(f"transport {self.name!r} is closed; cannot subscribe to {pattern!r}")
        validate_pattern(pattern)
        if group is not None and (not group or any(c in group for c in "/+#")):
            raise ValueError(f"group {group!r}: a shared-subscription group name cannot be empty or "
                             f"contain '/', '+' or '#'")
        filt = f"$share/{group}/{pattern}" if group else pattern
        local = _LocalSub(self, pattern, callback, group, owner, filt)
        with self._lock:
            bs = self._by_filter.get(filt)
            new = bs is None
            if bs is None:
                qos = self.settings.qos_for(pattern)
                ident = _ident_for(filt)
                while ident in self._by_id:  # a crc32 collision within this process: the next free one
                    ident = ident % _MAX_IDENT + 1
                bs = _BrokerSub(filt, pattern, group, ident, qos)
                self._unsubscribe_later.discard(filt)
                self._by_filter[filt] = bs
                self._by_id[bs.ident] = bs
            bs.locals.append(local)
            send_now = new and self._net_connected
        if send_now and self._client is not None:
            await self._confirm_subscribe(bs, local)
        return local

    def _subscribe_packet(self, client: mqtt.Client, bs: _BrokerSub) -> tuple[int, int | None]:
        if self.settings.is_v5:
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = bs.ident
            # Retain handling 1: retained messages only for a subscription the session did not have yet.
            options = SubscribeOptions(qos=bs.qos, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            rc, mid = client.subscribe(bs.filter, options=options, properties=props)
        else:
            rc, mid = client.subscribe(bs.filter, qos=bs.qos)
        if rc == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._sub_mids[mid] = bs
        return rc, mid

    async def _confirm_subscribe(self, bs: _BrokerSub, local: _LocalSub) -> None:
        assert self._client is not None and self._loop is not None
        rc, mid = self._subscribe_packet(self._client, bs)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            return  # not connected after all: on_connect subscribes again
        waiter = self._sub_waiters[mid] = self._loop.create_future()
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                reasons = await waiter
        except TimeoutError:
            log.warning("transport %s: no SUBACK for %r within %gs; it is sent again on reconnect",
                        self.name, bs.filter, self.settings.connect_timeout)
            return
        refused = [r for r in reasons if r.is_failure]
        if refused:
            await self._cancel(local)
            raise TransportError(f"transport {self.name!r}: MQTT broker {self.broker} refused the subscription "
                                 f"{bs.filter!r}: {refused[0]} (reason code {int(refused[0].value)})")

    async def _cancel(self, local: _LocalSub) -> None:
        if local.cancelled:
            return
        local.cancelled = True
        with self._lock:
            bs = self._by_filter.get(local.filter)
            if bs is None or local not in bs.locals:
                return
            bs.locals.remove(local)
            empty = not bs.locals
            if empty:
                del self._by_filter[bs.filter]
                del self._by_id[bs.ident]
        if empty:
            if self._client is not None and self._net_connected:
                self._client.unsubscribe(bs.filter)
            elif self.settings.persistent:
                self._unsubscribe_later.add(bs.filter)  # the kept session still has it

    # -- delivery ------------------------------------------------------------------------------------
    async def _drain(self) -> None:
        inbox = self._inbox
        try:
            while inbox and not self._closed:
                generation, message = inbox.popleft()
                while self._resume_grace_until and not self._known(message):
                    if time.monotonic() > self._resume_grace_until:
                        self._resume_grace_until = 0.0
                        break
                    await asyncio.sleep(0.02)
                await self._dispatch(message)
                if message.qos and generation == self._generation and self._client is not None:
                    self._client.ack(message.mid, message.qos)
        finally:
            self._draining = False

    def _known(self, message: mqtt.MQTTMessage) -> bool:
        """Some subscription of this process is there for the message."""
        idents = getattr(message.properties, "SubscriptionIdentifier", None) if message.properties else None
        if idents:
            return any(i in self._by_id for i in idents)
        return any(matches(bs.pattern, message.topic) for bs in list(self._by_filter.values()))

    def _targets(self, topic: str, properties: Any) -> list[_LocalSub]:
        if properties is not None:
            idents = getattr(properties, "SubscriptionIdentifier", None)
            if idents:
                targets: list[_LocalSub] = []
                for ident in idents:
                    bs = self._by_id.get(ident)
                    if bs is not None:
                        targets.extend(bs.pick())
                    elif ident not in self._stale_idents:
                        self._stale_idents.add(ident)
                        log.warning("transport %s: %s arrived for subscription identifier %d, which this process "
                                    "has not subscribed: a subscription kept in the resumed session of %r; "
                                    "acknowledged and dropped", self.name, topic, ident, self.client_id)
                if not targets:
                    self.stats["stale_subscription"] += 1
                return targets
        # MQTT 3.1.1 (Mosquitto sends one copy per client): every matching subscription locally.
        seen: list[_LocalSub] = []
        for bs in list(self._by_filter.values()):
            if matches(bs.pattern, topic):
                seen.extend(s for s in bs.pick() if s not in seen)
        return seen

    async def _dispatch(self, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        props = message.properties
        headers: dict[str, str] = {}
        if props is not None:
            pairs = getattr(props, "UserProperty", None)
            if pairs:
                headers = dict(pairs)
            elif getattr(props, "ContentType", None) == STRUCTURED_CONTENT_TYPE:
                headers = {"content-type": STRUCTURED_CONTENT_TYPE}  # the Decoder's mark of structured mode
        raw = RawMessage(message.payload, headers)
        retries = self.settings.max_redeliveries if message.qos else 0
        for local in self._targets(topic, props):
            attempt = 0
            while not local.cancelled:
                try:
                    await local.callback(topic, raw)
                    self.stats["delivered"] += 1
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # not acknowledged: deliver again, locally
                    if attempt < retries:
                        attempt += 1
                        self.stats["redelivered"] += 1
                        continue
                    self.stats["undeliverable"] += 1
                    log.error("transport %s: giving up on %s after %d deliveries to %r: %s", self.name, topic,
                              attempt + 1, local.owner or local.pattern, exc)
                    if self.on_undeliverable is not None:
                        self.on_undeliverable(topic, raw, exc)
                    break

    # -- birth and death ---------------------------------------------------------------------------
    def _certificate(self, type_: str, packet_type: int) -> tuple[bytes, Properties | None]:
        payload = {"source": self.source, "seq": self._seq}
        envelope = Envelope(type_, payload, self.source, uuid.uuid4().hex, self.clock.time(), self.source)
        body, headers = encode(envelope, prefix="")
        if not self.settings.is_v5:
            return body, None
        props = Properties(packet_type)
        props.ContentType = CONTENT_TYPE
        props.UserProperty = list(headers.items())
        return body, props

    def _seq_path(self) -> Path:
        return self.data_dir / f"mqtt-{self.name}.seq"

    def _read_seq(self) -> int:
        try:
            return int(self._seq_path().read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError as exc:
            raise TransportError(f"transport {self.name!r}: {self._seq_path()} is not a number: {exc}") from None

    def _write_seq(self, seq: int) -> None:
        path = self._seq_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            fh.write(str(seq))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    # -- health and close ----------------------------------------------------------------------------
    def health(self) -> Health:
        connected = self._net_connected and not self._closed
        if self._closed:
            detail = "closed"
        elif connected:
            detail = f"connected to {self.broker} as {self.client_id}"
        elif self._client is None:
            detail = f"not connected to {self.broker}"
        else:
            detail = f"reconnecting to {self.broker}" + (f" ({self._last_error})" if self._last_error else "")
        return Health(connected=connected, detail=detail, stats={
            **self.stats,
            "connected": connected,
            "inflight": len(self._pending_out),
            "outbox_depth": self._outbox.depth if self._outbox is not None else 0,
            "inbox": len(self._inbox),
            "session_seq": self._seq,
        })

    async def close(self) -> None:
        """Wait up to ``drain_timeout`` for PUBACKs, publish the death certificate, disconnect
        cleanly (so the broker does not send the Will) and close the outbox."""
        if self._closed:
            return
        self._closed = True
        client = self._client
        if self._replay_task is not None:
            self._replay_task.cancel()
        deadline = time.monotonic() + self.settings.drain_timeout
        if client is not None:
            while self._pending_out and self._net_connected and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if self.settings.death_certificates and self._net_connected:
                await self._publish_death(client, max(0.5, deadline - time.monotonic()))
        if self._outbox is not None:
            for topic, body, headers, qos, from_outbox in list(self._pending_out.values()):
                if not from_outbox:  # replayed ones are still in the outbox
                    self._outbox.put(topic, body, {"h": headers, "q": qos})
        self._pending_out.clear()
        if client is not None:
            await self._disconnect(client)
        with self._lock:
            self._net_connected = False
        for task in list(self._tasks):
            task.cancel()
        for future in [*self._waiters.values(), *self._sub_waiters.values()]:
            future.cancel()
        if self._outbox is not None:
            self._outbox.close()
        self._client = None

    async def _publish_death(self, client: mqtt.Client, timeout: float) -> None:
        assert self._loop is not None
        body, props = self._certificate(DEATH_TYPE, PacketTypes.PUBLISH)
        info = client.publish(self.death_topic, body, qos=1, properties=props)
        waiter = self._waiters[info.mid] = self._loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            log.warning("transport %s: death certificate not acknowledged by %s within %.1fs",
                        self.name, self.broker, timeout)

    # -- for tests and diagnostics -----------------------------------------------------------------
    def drop_connection(self) -> None:
        """Close the socket under paho without DISCONNECT, as a network failure would (tests)."""
        client = self._client
        if client is not None:
            sock = client.socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def factory(name: str, settings: MqttSettings, context: TransportContext) -> MqttTransport:
    """Registry factory: the runtime built ``settings`` from ``transports.<name>.settings`` (defaults filled)."""
    return MqttTransport(name, settings, clock=context.clock, data_dir=context.data_dir, plant=context.plant)
