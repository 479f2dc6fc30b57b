"""The paho client on the asyncio loop: socket adapter, connect and CONNACK, reconnect, control queue.

Threads: none of its own. paho runs on the asyncio loop through its external-loop interface: the
socket is watched with ``loop.add_reader``/``add_writer`` (paho's ``on_socket_open``/``close``/
``register_write``/``unregister_write``), readable and writable events call paho's packet reader
and writer, a one-second timer calls ``loop_misc`` (keepalive), and :meth:`Connection.reconnect`
reconnects with :class:`forge_core.tactics.Backoff`. Only the blocking TCP/TLS connect runs in a
worker thread. What paho hands over while reading (messages, PUBACKs, SUBACKs) is queued and taken
over once per read burst (:meth:`Connection.kick`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from forge_core.tactics import Backoff
from paho.mqtt.reasoncodes import ReasonCode

from forge_mqtt.settings import MqttSettings
from forge_mqtt.transport import paho_adapter
from forge_mqtt.transport.client_setup import make_client
from forge_mqtt.transport.tls_probe import TLS_ALERT

if TYPE_CHECKING:
    from forge_mqtt.transport.certificates import Certificates
    from forge_mqtt.transport.publisher import Publisher
    from forge_mqtt.transport.subscriber import Subscriber

__all__ = ["PERMANENT_REFUSALS", "Connection"]

log = logging.getLogger("forge.transport.mqtt")

#: CONNACK reason codes that retrying will not fix: credentials, identity, protocol, bans.
PERMANENT_REFUSALS = {0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C, 0x90, 0x95, 0x9A}



class Connection:
    """One broker connection of a transport; the publisher and subscriber act through it."""

    def __init__(self, name: str, settings: MqttSettings, *, client_id: str, broker: str,
                 stats: dict[str, int]) -> None:
        self.name = name
        self.settings = settings
        self.client_id = client_id
        self.broker = broker
        self.stats = stats
        self.client: paho_adapter.GuardedClient | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock = threading.Lock()  # paho's callbacks may run in connect's worker thread
        self.connected = False  # CONNACK received and the socket not closed since
        self.closed = False
        self.ever_connected = False
        #: Incremented on every disconnect: PUBACKs for messages of an old connection would be protocol errors.
        self.generation = 0
        self.session_present = False
        self.last_error = ""
        #: The TLS alert the broker closed the connection with before CONNACK (a refused client certificate
        #: under TLS 1.3 shows only there: the handshake already succeeded on the client's side).
        self.tls_alert: str | None = None
        #: The TLS settings' context (None without TLS): the transport's refusal probe opens a session with it.
        self.tls_context: ssl.SSLContext | None = None
        self.connected_event = asyncio.Event()
        self.connack: asyncio.Future[ReasonCode | str] | None = None
        self.control: deque[Callable[[], None]] = deque()
        self._loop_thread: int | None = None
        self._misc_handle: asyncio.TimerHandle | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._wake_pending = False
        #: In _readable: what paho hands over is taken over at the end of the read, in the same turn.
        self._reading = False
        #: When a read first stopped at its bound with packets left in the socket (None: drained since):
        #: what is still unread has waited at least since then (Subscriber.backlog_age).
        self.unread_since: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._backoff = Backoff(settings.reconnect_min_delay, settings.reconnect_max_delay)
        self.publisher: Publisher | None = None
        self.subscriber: Subscriber | None = None
        self.certificates: Certificates | None = None

    def bind(self, publisher: Publisher, subscriber: Subscriber, certificates: Certificates) -> None:
        self.publisher, self.subscriber, self.certificates = publisher, subscriber, certificates

    # -- the client --------------------------------------------------------------------------------
    def make_client(self) -> paho_adapter.GuardedClient:
        return make_client(self)

    def start(self) -> mqtt.Client:
        """A new client bound to the running loop, awaiting its CONNACK in :attr:`connack`."""
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.client = self.make_client()
        self.connack = self.loop.create_future()
        return self.client

    async def abandon(self, client: mqtt.Client) -> None:
        await self.disconnect(client)
        if self.client is client:
            self.client = None
        with self.lock:
            self.connected = False

    async def disconnect(self, client: mqtt.Client, timeout: float = 1.0) -> None:
        """DISCONNECT (so the broker does not send the Will), flushed by the loop; then close the socket."""
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        with contextlib.suppress(Exception):
            client.disconnect()
        deadline = time.monotonic() + timeout
        while client.socket() is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        with contextlib.suppress(Exception):
            paho_adapter.close_socket(client)  # not flushed in time, or a refused connection left it open
        if self._misc_handle is not None:
            self._misc_handle.cancel()
            self._misc_handle = None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # -- paho on the asyncio loop --------------------------------------------------------------------
    def _on_loop(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback`` on the asyncio loop: now if this is its thread, else soon (connect's worker)."""
        loop = self.loop
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

    def _watch(self, client: mqtt.Client, sock: socket.socket) -> None:
        fd: socket.socket = sock  # (the identity checks below would narrow sock to paho's SocketLike)
        if client is not self.client or client.socket() is not sock or self.loop is None:
            return  # closed again before the loop got here
        self.loop.add_reader(fd, self._readable, client)
        if client.want_write():
            self.loop.add_writer(fd, client.loop_write)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._unwatch, sock, True)

    def _unwatch(self, sock: Any, reader: bool) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            if reader:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(sock)
            with contextlib.suppress(ValueError, OSError):
                loop.remove_writer(sock)

    def _on_socket_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._watch_write, client, sock)

    def _watch_write(self, client: mqtt.Client, sock: socket.socket) -> None:
        fd: socket.socket = sock
        if client is self.client and client.socket() is sock and self.loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.add_writer(fd, client.loop_write)

    def _on_socket_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._unwatch, sock, False)

    def _readable(self, client: mqtt.Client) -> None:
        self._reading = True
        try:
            complete = paho_adapter.read_available(client)
        except BaseException:
            self._reading = False
            if self._wake_pending and self.loop is not None:
                self.loop.call_soon(self.kick)  # what was read before the error is still taken over
            raise
        self._reading = False
        if complete:
            self.unread_since = None
        elif self.unread_since is None:  # stopped at the bound with more to read: a backlog in the socket
            self.unread_since = time.monotonic()
        if self._wake_pending:
            # Take over what the read brought now, not in a later turn: messages for sync handlers are
            # delivered here, and their PUBACKs go out with the write below.
            self.kick()
        if client.want_write() and client.socket() is not None:
            client.loop_write()  # PUBACKs and resends queued while reading: out in the same turn

    def schedule_misc(self) -> None:
        if self._misc_handle is None and self.loop is not None and not self.closed:
            self._misc_handle = self.loop.call_later(1.0, self._misc)

    def _misc(self) -> None:
        """Keepalive (PINGREQ, and the broker's silence) once a second."""
        self._misc_handle = None
        client = self.client
        if client is None or self.closed:
            return
        if client.socket() is not None:
            client.loop_misc()
        self.schedule_misc()

    # -- reconnect --------------------------------------------------------------------------------
    def _start_reconnect(self) -> None:
        if self.closed or self.client is None or not self.ever_connected:
            return
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = self.spawn(self.reconnect())

    async def reconnect(self) -> None:
        """Reconnect with the one backoff (``reconnect_min_delay`` doubling to ``reconnect_max_delay``)
        until CONNACK, as paho's own thread would."""
        s = self.settings
        self._backoff.reset()
        while not self.closed and not self.connected:
            await asyncio.sleep(self._backoff.next())
            client = self.client
            if client is None or self.closed:
                return
            if client.socket() is None:
                try:
                    await asyncio.to_thread(client.reconnect)
                except (OSError, ValueError, ssl.SSLError) as exc:
                    self.last_error = f"reconnect: {exc}"
            if client.socket() is not None:
                deadline = time.monotonic() + s.connect_timeout
                while client.socket() is not None and not self.connected and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                if not self.connected:
                    with contextlib.suppress(Exception):
                        paho_adapter.close_socket(client)

    # -- paho's callbacks (on the loop, or in connect's worker thread) ----------------------------------
    def wake(self) -> None:
        """Something to take over: processed once after the current read burst, not per message."""
        if self._wake_pending:
            return
        self._wake_pending = True
        loop = self.loop
        if loop is None:
            return
        if self._reading and threading.get_ident() == self._loop_thread:
            return  # _readable takes it over when its read is done
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is listening any more
            if threading.get_ident() == self._loop_thread:
                loop.call_soon(self.kick)
            else:
                loop.call_soon_threadsafe(self.kick)

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        assert self.certificates is not None
        self.certificates.set_will(client)
        self.tls_alert = None
        if self.settings.tls:
            client.on_log = self._on_log  # until CONNACK only: paho formats every line, per packet, for on_log

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, line: str) -> None:
        if level == mqtt.MQTT_LOG_ERR and (match := TLS_ALERT.search(line)):
            self.tls_alert = match.group(1).strip()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Any) -> None:
        assert self.certificates is not None and self.subscriber is not None
        client.on_log = None
        if reason.is_failure:
            self.last_error = f"CONNACK {reason} ({int(reason.value)})"
            self.control.append(lambda: self._resolve_connack(reason))
            self.wake()
            return
        present = bool(getattr(flags, "session_present", False))
        with self.lock:
            self.connected = True
        self.session_present = present
        self.certificates.publish_birth(client)
        self.subscriber.on_connect(client, present)
        self.control.append(lambda: self._connected(reason))
        self.wake()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                       properties: Any) -> None:
        with self.lock:
            was = self.connected
            self.connected = False
            self.generation += 1
        if reason.is_failure or was:
            self.last_error = f"disconnected: {reason}"
        if self.tls_alert is not None and not was:
            self.last_error = f"TLS alert from the broker before CONNACK: {self.tls_alert}"
        self.control.append(lambda: self._disconnected(reason, was))
        self.wake()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        assert self.subscriber is not None
        self.subscriber.inbox.append((self.generation, message))
        if not self._wake_pending:  # (wake()'s first test: one call less per message of a burst)
            self.wake()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any) -> None:
        assert self.publisher is not None
        self.publisher.acks.append((mid, reason.value))
        if not self._wake_pending:  # (wake()'s first test: one call less per PUBACK of a burst)
            self.wake()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                      properties: Any) -> None:
        subscriber = self.subscriber
        assert subscriber is not None
        self.control.append(lambda: subscriber.resolve_subscribe(mid, reasons))
        self.wake()

    # -- taken over on the loop -------------------------------------------------------------------------
    def kick(self) -> None:
        """Take over whatever paho queued (one call per burst)."""
        assert self.publisher is not None and self.subscriber is not None
        self._wake_pending = False
        control = self.control
        while control:
            control.popleft()()
        self.publisher.take_acks()
        self.subscriber.start_drain()

    def _resolve_connack(self, outcome: ReasonCode | str) -> None:
        if self.connack is not None and not self.connack.done():
            self.connack.set_result(outcome)

    def _connected(self, reason: ReasonCode) -> None:
        assert self.publisher is not None and self.subscriber is not None
        if self.session_present:
            self.stats["sessions_resumed"] += 1
            if not self.ever_connected:
                self.subscriber.hold_for_resubscribe()
        if self.ever_connected:
            self.stats["reconnects"] += 1
            log.info("transport %s: reconnected to MQTT broker %s", self.name, self.broker)
        self.ever_connected = True
        self.last_error = ""
        self._resolve_connack(reason)
        self.connected_event.set()
        self.publisher.on_connected()

    def _disconnected(self, reason: ReasonCode, was_connected: bool) -> None:
        self.connected_event.clear()
        self._start_reconnect()
        self._resolve_connack(f"connection closed before CONNACK: {reason}")
        if was_connected and not self.closed:
            log.warning("transport %s: lost MQTT broker %s (%s); reconnecting", self.name, self.broker, reason)
