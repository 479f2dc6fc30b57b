"""One paho client per edge node or host, its network thread bridged to the asyncio loop.

Why not the forge_mqtt transport: a transport carries Forge envelopes (JSON, CloudEvents attributes)
and has one Will per connection, ``forge/death/<client id>``. A Sparkplug edge node needs a Will of
its own, rebuilt at every CONNECT (an NDEATH with the next bdSeq), protobuf bodies, QoS 0 data and a
clean session; a host needs a retained STATE Will. So each component owns a paho client, configured
from forge_mqtt's :class:`~forge_mqtt.MqttSettings` (the same broker, TLS and credential settings a
plant already declares for its mqtt transport).

paho runs its own network thread (``loop_start``) and reconnects with ``reconnect_min_delay`` doubling
to ``reconnect_max_delay`` (a connect that reached itself is refused and retried the same way: ``guard``);
``on_pre_connect`` asks the owner for the Will of each CONNECT. Callbacks
are handed to the loop: connects and disconnects one by one, received messages in bursts (one wake-up
of the loop per burst, not per message).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from forge_mqtt import MqttSettings, apply_credentials
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from forge_sparkplug.mqtt.guard import GuardedPaho

__all__ = ["Handover", "Received", "SparkplugClient", "Will"]

log = logging.getLogger("forge.sparkplug.mqtt")

#: paho's log line of a read that failed on the broker's TLS alert (a refused client certificate under TLS 1.3
#: shows only there): "[SSL: SSLV3_ALERT_CERTIFICATE_EXPIRED] sslv3 alert certificate expired (_ssl.c:2580)".
_TLS_ALERT = re.compile(r"\[SSL: \w*ALERT\w*\] ([^(]+)")


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    body: bytes
    qos: int
    retain: bool


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    body: bytes
    retain: bool


class Handover:
    """The owner's side of a client (this module's, and the OEE line's simulated one): connection changes and
    received messages handed to the owner's callbacks on the loop, in order."""

    connected: bool
    connects: int
    _inbox: deque[Received]
    _on_connect: Callable[[], Awaitable[None]]
    _on_disconnect: Callable[[], Awaitable[None]]
    _on_messages: Callable[[list[Received]], Awaitable[None]]

    async def _hand_over(self, events: list[bool]) -> None:
        """Connection changes first, then what arrived, in bursts of at most 500 (one wake-up per burst)."""
        for up in events:
            self.connected = up
            if up:
                self.connects += 1
                await self._on_connect()
            else:
                await self._on_disconnect()
        while self._inbox:
            await self._on_messages([self._inbox.popleft() for _ in range(min(500, len(self._inbox)))])


class SparkplugClient(Handover):
    """A clean-session MQTT client (Sparkplug requires one) whose events run on the asyncio loop.

    ``will()`` is called before every CONNECT (paho's thread) and returns the Will to register;
    ``on_connect()`` / ``on_disconnect()`` are awaited on the loop; ``on_messages(batch)`` is awaited
    with what arrived since the last call, in order.
    """

    def __init__(self, settings: MqttSettings, client_id: str, *, name: str,
                 will: Callable[[], Will | None],
                 on_connect: Callable[[], Awaitable[None]],
                 on_disconnect: Callable[[], Awaitable[None]],
                 on_messages: Callable[[list[Received]], Awaitable[None]]) -> None:
        self.settings = settings
        self.client_id = client_id
        self.name = name
        self.broker = f"{settings.host}:{settings.port}"
        self._will = will
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._on_messages = on_messages
        self.connected = False
        self.connects = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._inbox: deque[Received] = deque()
        self._events: deque[bool] = deque()  # True: connected, False: disconnected, in paho's order
        self._wake_pending = False
        self._lock = threading.Lock()
        self._pump: asyncio.Task[None] | None = None
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._probes: dict[int, asyncio.Future[bool]] = {}  # UNSUBSCRIBE mid -> its UNSUBACK
        #: a filter this client never subscribes: unsubscribing it proves the connection (probe())
        self.probe_filter = f"spBv1.0/forge-link-probe/{client_id}"
        self._woken = asyncio.Event()
        self._tls_alert: str | None = None  # the last one logged, so a retrying client says it once
        self._stop_will: bool | None = None  # set by stop(): a CONNACK that comes after it is answered with DISCONNECT
        self.client = self._make_client()

    # -- setup --------------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = GuardedPaho(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,  # no connection to itself
                             protocol=mqtt.MQTTv5 if s.is_v5 else mqtt.MQTTv311,
                             clean_session=None if s.is_v5 else True)
        client.who = f"{self.name}: client {self.client_id!r}"
        client.max_inflight_messages_set(s.max_inflight)
        client.max_queued_messages_set(0)
        client.connect_timeout = s.connect_timeout
        client.reconnect_delay_set(max(1, round(s.reconnect_min_delay)), max(1, round(s.reconnect_max_delay)))
        apply_credentials(client, s)
        client.on_pre_connect = self._paho_pre_connect
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_message = self._paho_message
        client.on_publish = self._paho_publish
        client.on_unsubscribe = self._paho_unsubscribe
        return client

    def start(self) -> None:
        """Connect in the background (and keep reconnecting); returns at once."""
        self.loop = asyncio.get_running_loop()
        self._pump = self.loop.create_task(self._pumping(), name=f"{self.name}:mqtt")
        props = None
        if self.settings.is_v5:
            props = Properties(PacketTypes.CONNECT)
            # clean start, no session kept [tck-id-message-flow-phid-sparkplug-clean-session-50]
            props.SessionExpiryInterval = 0
        self.client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive,
                                  clean_start=True, properties=props)
        self.client.loop_start()

    # -- paho's thread ----------------------------------------------------------------------------------
    def _paho_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        if self.settings.tls:
            client.on_log = self._paho_log  # until CONNACK only: paho formats every line, per packet, for on_log
        will = self._will()
        if will is None:
            client.will_clear()
        else:
            client.will_set(will.topic, will.body, qos=will.qos, retain=will.retain)

    def _paho_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                      properties: Any) -> None:
        client.on_log = None
        if self._stop_will is not None:  # stop() came before this CONNACK: its disconnect() found no connection
            self._disconnect()
            return
        if reason.is_failure:
            log.warning("%s: MQTT broker %s refused client %r: %s", self.name, self.broker, self.client_id, reason)
            return
        self._tls_alert = None
        self._event(True)

    def _paho_log(self, client: mqtt.Client, userdata: Any, level: int, line: str) -> None:
        """The broker's TLS alert before CONNACK (expired, revoked, unknown CA, missing certificate): paho
        would only reconnect, silently."""
        match = _TLS_ALERT.search(line) if level == mqtt.MQTT_LOG_ERR else None
        if match and match.group(1).strip() != self._tls_alert:
            self._tls_alert = match.group(1).strip()
            log.warning("%s: MQTT broker %s ended the TLS session of client %r before CONNACK with the alert %r "
                        "(client certificate %s); retrying", self.name, self.broker, self.client_id, self._tls_alert,
                        self.settings.cert_file or "not set")

    def _paho_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                         properties: Any) -> None:
        loop = self.loop
        if loop is not None and self._probes:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._probes_failed)
        self._event(False)

    def _paho_unsubscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        with self._lock:  # probe() registers the mid under this lock, right after unsubscribe() returned it
            known = mid in self._probes
        loop = self.loop
        if loop is not None and known:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._probed, mid)

    def _paho_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.append(Received(message.topic, bytes(message.payload), bool(message.retain)))
        self._wake()

    def _paho_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                      properties: Any) -> None:
        loop = self.loop
        if loop is not None and mid in self._acks:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._acked, mid)

    def _event(self, up: bool) -> None:
        with self._lock:
            self._events.append(up)
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        loop = self.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
                loop.call_soon_threadsafe(self._woken.set)

    # -- the loop ---------------------------------------------------------------------------------------
    async def _pumping(self) -> None:
        """Hand paho's events to the owner, in order: connection changes first, then messages."""
        while True:
            await self._woken.wait()
            self._woken.clear()
            with self._lock:
                self._wake_pending = False
                events = list(self._events)
                self._events.clear()
            await self._hand_over(events)

    def _probed(self, mid: int) -> None:
        future = self._probes.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(True)

    def _probes_failed(self) -> None:
        for future in self._probes.values():
            if not future.done():
                future.set_result(False)
        self._probes.clear()

    def _acked(self, mid: int) -> None:
        future = self._acks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    # -- what the owner does ----------------------------------------------------------------------------
    def publish(self, topic: str, body: bytes, qos: int = 0, retain: bool = False) -> int | None:
        """Hand a publish to paho; its mid, or None when not connected (paho refused it)."""
        info = self.client.publish(topic, body, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return info.mid

    async def publish_written(self, topic: str, body: bytes, qos: int = 0, retain: bool = False,
                              timeout: float = 5.0) -> bool:
        """Publish and wait until paho wrote it to the socket (QoS 0) or the broker acknowledged it
        (QoS 1); False if not connected or not done within ``timeout``."""
        assert self.loop is not None
        future: asyncio.Future[None] = self.loop.create_future()
        with self._lock:  # paho may call on_publish before publish() returns: register first
            info = self.client.publish(topic, body, qos=qos, retain=retain)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return False
            self._acks[info.mid] = future
        if info.is_published():
            self._acked(info.mid)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            self._acks.pop(info.mid, None)
            return False
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                return False  # stop() or drop() ended the client meanwhile: not acknowledged, the caller goes on
            raise
        return True

    async def probe(self, timeout: float = 5.0) -> bool:
        """Prove the connection: True once the broker has read everything this client wrote before the call.

        An UNSUBSCRIBE of :attr:`probe_filter` (never subscribed: nothing changes) must be answered with an
        UNSUBACK [MQTT-3.10.4-4, MQTT 5: 3.11], even when nothing was unsubscribed or an ACL refuses it, and a
        connection's packets are read in order, so the UNSUBACK comes only after the broker read the QoS 0
        publishes written before. paho offers no PINGREQ of one's own; this is the same round trip. False when
        not connected, the connection closes first, or no answer within ``timeout`` (a dead link not yet noticed).
        """
        assert self.loop is not None
        future: asyncio.Future[bool] = self.loop.create_future()
        with self._lock:  # paho may call on_unsubscribe before unsubscribe() returns: register first
            rc, mid = self.client.unsubscribe(self.probe_filter)
            if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
                return False
            self._probes[mid] = future
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            self._probes.pop(mid, None)
            return False
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                return False
            raise

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        if filters:
            self.client.subscribe(filters)

    async def stop(self, *, will: bool = False, timeout: float = 2.0) -> None:
        """Disconnect cleanly. ``will``: MQTT 5 DISCONNECT with reason 0x04 (Disconnect with Will
        Message), so the broker publishes the Will [tck-id-payloads-ndeath-will-message-publisher-
        disconnect-mqtt50]; otherwise the Will is discarded. Stopped while connecting, the connection is
        ended as soon as it is made; one still open after ``timeout`` is closed (the broker sends its Will)."""
        self._stop_will = will
        self._disconnect()
        await asyncio.to_thread(self._join, timeout)
        self._end()

    def _disconnect(self) -> None:
        if self.settings.is_v5 and self._stop_will:
            self.client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=0x04))
        else:
            self.client.disconnect()

    def drop(self) -> None:
        """End abruptly, as a killed process does: the socket closes without DISCONNECT, so the
        broker publishes the Will."""
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.client._thread_terminate = True  # paho's own flag: stop its thread without DISCONNECT
        self._end()

    def _join(self, timeout: float) -> None:
        thread = self.client._thread
        if thread is not None:
            thread.join(timeout)
        self.client.loop_stop()
        self.client._sock_close()  # no owner may keep a connection (paho's own; a no-op once DISCONNECT closed it)

    def _end(self) -> None:
        self.connected = False
        if self._pump is not None:
            self._pump.cancel()
        for future in self._acks.values():
            future.cancel()
        self._acks.clear()
        self._probes_failed()
