"""Every use of paho-mqtt's private API, in one place.

The transport runs paho on the asyncio loop and needs a few things paho does not offer publicly;
each is wrapped here, and tests/transport/test_paho_adapter.py pins the private behaviour each one
relies on, so a paho upgrade that changes them fails those tests rather than the plant:

- :func:`read_available` — ``_packet_read`` and ``_loop_rc_handle``: read every complete packet of
  a readable event (``loop_read`` stops after len(in-flight) packets) and TLS bytes already
  decrypted, and handle a read error as paho's own loop would (close, ``on_disconnect``).
- :func:`close_socket` — ``_sock_close``: drop a socket paho did not close itself (a DISCONNECT not
  flushed in time, a refused connection) and tell ``on_socket_close``.
- :class:`FastClient` — overrides ``_handle_publish`` (one-pass PUBLISH decoder, reading
  ``_in_packet``, ``_protocol``, ``_manual_ack``, ``_on_message``; calling ``_send_puback``, and ``on_message`` as
  ``_handle_on_message`` does, under ``_in_callback_mutex`` with ``_userdata``, errors to ``_easy_log``;
  ``_handle_on_message`` itself once ``message_callback_add`` was used),
  ``_packet_read`` taking a packet's first three bytes in one recv (filling ``_in_packet`` as paho's reader
  does, a two-byte packet's next command as paho's read command; calling ``_sock_recv``),
  ``_packet_write`` joining queued packets into one send (reading ``_out_packet``, calling ``_sock_send``,
  setting ``_last_msg_out`` under ``_msgtime_mutex``),
  ``_handle_pubackcomp`` for a PUBACK without properties (reading ``_in_packet``, ``_protocol``,
  ``_out_message_mutex``, ``_out_messages``; calling ``_do_on_publish``), ``_update_inflight``
  (reading ``_out_messages``/``_inflight_messages``) and ``_do_on_publish`` (publish_done.py).
- :meth:`FastClient.publish_packed`, ``ack`` — paho's ``publish``/``_send_publish`` for QoS 1, ``ack``'s PUBACK
  (reading ``_sock``, ``_on_log``, ``_logger``, ``_max_queued_messages``, ``_manual_ack``, ``_out_messages``,
  ``_inflight_messages``, ``_max_inflight_messages``; calling ``_mid_generate`` and ``_packet_queue``).
- :class:`GuardedClient` — overrides ``_create_socket_connection`` (paho's TCP connect, called by
  ``reconnect`` before the TLS handshake and before CONNECT is written): a socket connected to itself
  is refused there (forge_core's :func:`~forge_core.transport.refuse_self_connection`). paho's public
  ``on_socket_open`` comes only after the TLS handshake, and cannot fail the connect.
- :class:`~forge_mqtt.transport.packed_properties.PackedProperties` (re-exported here with :func:`utf8`)
  — a ``Properties`` whose ``pack()`` returns bytes packed once: relies on ``_send_publish`` reading
  nothing of the properties but ``pack()``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from forge_core.transport import SelfConnectionError, refuse_self_connection
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers
from paho.mqtt.reasoncodes import ReasonCode

from forge_mqtt.transport.decoder import decode_publish, decode_publish_311
from forge_mqtt.transport.packed_properties import PackedProperties, utf8
from forge_mqtt.transport.publish_done import do_on_publish

__all__ = ["MAX_PACKETS_PER_EVENT", "FastClient", "GuardedClient", "PackedProperties", "client_class", "close_socket",
           "guard", "read_available", "utf8"]

log = logging.getLogger("forge.transport.mqtt")

#: Packets read per readable event at most, so one busy socket cannot starve the loop: the rest is
#: read on the next turn (epoll is level-triggered), after timers and the delivery loop had theirs.
#: It was 10,000: under a malformed flood on a loaded 2-core box (the plant at 6 % of a core) one
#: read of a full socket buffer held the loop 10 s, and every timer (beats, the monitor) with it.
MAX_PACKETS_PER_EVENT = 256
#: Bytes of queued packets joined into one send() at most.
WRITE_CHUNK = 65_536
_PUBLISH, _DISCONNECT = mqtt.PUBLISH, mqtt.DISCONNECT


def client_class() -> type[GuardedClient]:
    """:class:`FastClient` if this paho has the ``_handle_publish`` it takes over, else :class:`GuardedClient`."""
    return FastClient if hasattr(mqtt.Client, "_handle_publish") else GuardedClient


class GuardedClient(mqtt.Client):
    """paho's client that refuses a TCP connection to itself, right after the connect and before TLS or
    CONNECT (see forge_core.transport.self_connect): the socket is reset (the port is free for the broker
    at once), a warning names the address, ``reconnect``/``connect`` raise
    :class:`~forge_core.transport.SelfConnectionError` (a ConnectionRefusedError), and whoever retries a
    refused connect retries it. :func:`guard` names the owner and where to count."""

    guard_who = "mqtt client"
    guard_stats: dict[str, int] | None = None

    def _create_socket_connection(self) -> socket.socket:
        sock = super()._create_socket_connection()
        try:
            refuse_self_connection(sock, who=self.guard_who, log=log)
        except SelfConnectionError:
            if self.guard_stats is not None:
                self.guard_stats["self_connections"] = self.guard_stats.get("self_connections", 0) + 1
            raise
        return sock

    def publish_packed(self, topic: str, field: bytes, payload: bytes, qos: int,
                       properties: PackedProperties | None) -> mqtt.MQTTMessageInfo:
        """``publish(topic, payload, qos, properties=properties)``; ``field`` is ``utf8(topic)``
        (:class:`FastClient` writes it into the packet as it is)."""
        return self.publish(topic, payload, qos, properties=properties)


def guard(client: mqtt.Client, who: str, stats: dict[str, int]) -> None:
    """Name ``client``'s owner in the self-connection warning and count them in ``stats["self_connections"]``."""
    stats.setdefault("self_connections", 0)
    if isinstance(client, GuardedClient):
        client.guard_who, client.guard_stats = who, stats


def read_available(client: mqtt.Client) -> bool:
    """Read what the socket has: every complete packet up to :data:`MAX_PACKETS_PER_EVENT`, and for
    TLS whatever the SSL layer already decrypted (select does not see it). A read error closes the
    connection as paho's loop would. False when it stopped at the bound with more to read (the
    caller's backlog then includes what is still unread)."""
    sock = client.socket()
    read = getattr(client, "_packet_read", None)
    if read is None:  # paho without the private reader: its public one (fewer packets per event)
        client.loop_read()
        return True
    for _ in range(MAX_PACKETS_PER_EVENT):
        rc = read()
        if rc == mqtt.MQTT_ERR_AGAIN:
            if sock is None or not getattr(sock, "pending", lambda: 0)():
                return True
        elif rc:
            client._loop_rc_handle(rc)
            return True
        if client.socket() is None:
            return True
    return False


def close_socket(client: mqtt.Client) -> None:
    """Close the client's socket now (``on_socket_close`` is called); nothing if it has none."""
    client._sock_close()


class FastClient(GuardedClient):
    """paho's client with :func:`~forge_mqtt.transport.decoder.decode_publish` for received MQTT 5
    PUBLISH at QoS 0 and 1 (:func:`~forge_mqtt.transport.decoder.decode_publish_311` on 3.1.1), and
    a PUBACK path that does not scan every message in flight; guarded against a connection to itself
    (:class:`GuardedClient`).

    What happens after decoding is paho's own: ``on_message`` (through ``_handle_on_message``), and
    for QoS 1 the PUBACK now or, with ``manual_ack``, when the application calls ``ack``.
    """

    def _packet_read(self) -> mqtt.MQTTErrorCode:
        # paho reads a packet's first byte, then each byte of its remaining length, with a recv() each.
        # Every packet has at least two bytes, so a new packet's first three come in one recv() here: the
        # command and one or two length bytes (a PUBLISH of 128 bytes up to 16 KiB, as Forge's MQTT 5
        # events are, has two) or the first body byte. Only a packet of two bytes (PINGRESP, DISCONNECT)
        # can be followed by a third, the next packet's command: it is kept and the packet read on
        # from there. The rest is paho's reader, in as many recv() as paho's.
        in_packet = self._in_packet
        if in_packet["command"] == 0:
            try:
                head = self._sock_recv(3)
            except BlockingIOError:
                return mqtt.MQTTErrorCode.MQTT_ERR_AGAIN
            except TimeoutError as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "timeout on socket: %s", err)
                return mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST
            except OSError as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
                return mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST
            if not head:
                return mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST
            in_packet["command"] = head[0]
            if len(head) > 1:
                length = head[1]
                if length < 128:  # the whole remaining length, taken in as paho's loop takes it
                    in_packet["remaining_count"].append(length)
                    in_packet["remaining_mult"] = 128
                    in_packet["remaining_length"] = length
                    in_packet["have_remaining"] = 1
                    if len(head) == 3:
                        if not length:  # a two-byte packet, and the next one's command
                            return self._read_before(head[2])
                        in_packet["packet"].append(head[2])
                        length -= 1
                    in_packet["to_process"] = length
                else:
                    _take_long_length(in_packet, head)
        return super()._packet_read()

    def _read_before(self, next_command: int) -> mqtt.MQTTErrorCode:
        """Handle the two-byte packet in ``_in_packet`` (paho's reader then starts a new packet), and
        start the next one with ``next_command``, which its head's recv took."""
        sock = self._sock
        rc = super()._packet_read()
        if not next_command:  # command 0 is reserved: paho's reader would lose its place
            return mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL
        if self._sock is sock:  # (not after a reconnect: a new connection reads afresh)
            self._in_packet["command"] = next_command
        return rc

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        command = self._in_packet["command"]
        qos = (command & 0x06) >> 1
        if qos > 1:
            return super()._handle_publish()
        if self._protocol == mqtt.MQTTv5:
            message = decode_publish(command, self._in_packet["packet"])
        else:  # paho's generic decoder (struct formats built per packet) and MQTTMessage(), a Condition each
            message = decode_publish_311(command, self._in_packet["packet"])
        message.timestamp = time.monotonic()
        if self._filtered:
            self._handle_on_message(message)
        else:
            # paho's _handle_on_message without what only per-topic callbacks need (a list of matches
            # from its topic tree, the callback lock; ~3 % of a Forge pair's CPU): with none added it
            # calls on_message, under the same lock and with the same error handling as here.
            on_message = self._on_message  # (the on_message property's getter: a call per message)
            if on_message:
                with self._in_callback_mutex:
                    try:
                        on_message(self, self._userdata, message)
                    except Exception as err:
                        self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                        if not self.suppress_exceptions:
                            raise
        if qos == 1 and not self._manual_ack:
            return self._send_puback(message.mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def publish_packed(self, topic: str, field: bytes, payload: bytes, qos: int,
                       properties: PackedProperties | None) -> mqtt.MQTTMessageInfo:
        """``publish(topic, payload, qos, properties=properties)`` for a topic the caller checked as paho
        does (not empty, no wildcard, at most 65,535 bytes) and wrote once as ``field`` (:func:`utf8`).

        A QoS 1 publish while connected and logging nothing (paho's ``_easy_log`` formats nothing then) is
        stored and queued as paho's ``publish`` and ``_send_publish`` do, the packet joined in one go, its
        ``info`` sharing one Condition as received messages' do (paho notifies it on the PUBACK; Forge never
        calls ``wait_for_publish``): ~33,000 instructions a message less. Anything else goes to paho."""
        if qos != 1 or self._sock is None or self._on_log is not None or self._logger is not None \
                or self._max_queued_messages:
            return self.publish(topic, payload, qos, properties=properties)
        if self._protocol == mqtt.MQTTv5:
            props = _EMPTY_PROPERTIES if properties is None else properties.pack()
        else:
            props = b""
        size = len(field) + len(payload) + len(props) + 2
        if size > _MAX_PUBLISH:  # paho's error
            return self.publish(topic, payload, qos, properties=properties)
        mid = self._mid_generate()
        message = _new_message(mqtt.MQTTMessage)
        message.timestamp = mqtt.time_func()
        message.dup = message.retain = False
        message.mid = mid
        message._topic = field[2:]
        message.payload = payload
        message.qos = qos
        message.properties = properties
        message.info = info = _new_info(mqtt.MQTTMessageInfo)
        info.mid = mid
        info._published = False
        info._iterpos = 0
        info._condition = _OUTGOING_CONDITION
        with self._out_message_mutex:
            if mid in self._out_messages:
                info.rc = mqtt.MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
                return info
            self._out_messages[mid] = message
            if self._max_inflight_messages and self._inflight_messages >= self._max_inflight_messages:
                message.state = mqtt.mqtt_ms_queued
                info.rc = mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
                return info
            self._inflight_messages += 1
            message.state = mqtt.mqtt_ms_wait_for_puback
            length = (bytes((size,)) if size < 128 else bytes((size & 0x7F | 0x80, size >> 7)) if size < 16_384
                      else VariableByteIntegers.encode(size))  # MQTT's variable byte integer
            packet = b"".join((b"\x32", length, field, mid.to_bytes(2, "big"), props, payload))
            info.rc = self._packet_queue(_PUBLISH, packet, mid, qos, info)
            return info

    def ack(self, mid: int, qos: int) -> mqtt.MQTTErrorCode:
        # paho's ack -> _send_puback (a log call; nothing logs after CONNACK) -> _send_command_with_mid, in one step
        if qos == 1 and self._manual_ack and self._on_log is None and self._logger is None:
            return self._packet_queue(mqtt.PUBACK, bytes((0x40, 2, mid >> 8, mid & 0xFF)), mid, 1)
        return super().ack(mid, qos)

    #: Set by message_callback_add: from then on received messages go through paho's topic matcher.
    _filtered = False

    def message_callback_add(self, sub: str, callback: mqtt.CallbackOnMessage) -> None:
        self._filtered = True
        super().message_callback_add(sub, callback)

    def _handle_pubackcomp(self, cmd: str) -> mqtt.MQTTErrorCode:
        # paho decodes every PUBACK into a new ReasonCode and a new Properties (~20-30 µs on this
        # machine, the largest single cost of a QoS 1 publish). A PUBACK is two bytes (the mid) or,
        # on MQTT 5, three (plus a reason code): those are decoded here, with one shared ReasonCode
        # per code and one empty Properties (on_publish reads them, nobody keeps or changes them).
        # Longer ones (properties, a reason string) and PUBCOMP go to paho.
        packet = self._in_packet["packet"]
        size = len(packet)
        if cmd != "PUBACK" or not (size == 2 or (size == 3 and self._protocol == mqtt.MQTTv5)):
            return super()._handle_pubackcomp(cmd)  # type: ignore[arg-type]
        reason = _PUBACK_REASONS.get(packet[2] if size == 3 else 0)
        if reason is None:  # a code PUBACK does not know: paho's own error path
            return super()._handle_pubackcomp(cmd)  # type: ignore[arg-type]
        mid = (packet[0] << 8) | packet[1]
        with self._out_message_mutex:
            if mid in self._out_messages:  # only once per message, as paho
                return do_on_publish(self, mid, reason, _NO_PROPERTIES)  # (self._do_on_publish without its frame)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_write(self) -> mqtt.MQTTErrorCode:
        # paho sends each queued packet with a send() of its own. On the loop, packets queue up between
        # writes (a burst of publishes, the PUBACKs of a read): those are joined and sent together,
        # a system call per WRITE_CHUNK instead of one per packet. From a QoS 0 PUBLISH (its on_publish
        # comes when it is written) or a DISCONNECT (it closes the socket) on, paho's own write.
        out = self._out_packet
        while len(out) > 1:
            batch: list[Any] = []
            size = 0
            for packet in out:
                command = packet["command"] & 0xF0
                if command == _DISCONNECT or (command == _PUBLISH and packet["qos"] == 0):
                    break
                batch.append(packet)
                size += packet["to_process"]
                if size >= WRITE_CHUNK:
                    break
            if len(batch) < 2:
                break
            try:
                sent = self._sock_send(b"".join([p["packet"][p["pos"]:] if p["pos"] else p["packet"] for p in batch]))
            except (AttributeError, ValueError):
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
            except BlockingIOError:
                return mqtt.MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "failed to send on socket: %s", err)
                return mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST
            if sent <= 0:
                break
            with self._msgtime_mutex:
                self._last_msg_out = mqtt.time_func()
            for packet in batch:
                left = packet["to_process"]
                if sent < left:  # the rest of this one on the next send
                    packet["to_process"] = left - sent
                    packet["pos"] += sent
                    break
                sent -= left
                packet["to_process"] = 0
                out.popleft()
        return super()._packet_write()

    def _do_on_publish(self, mid: int, reason_code: ReasonCode, properties: Properties) -> mqtt.MQTTErrorCode:
        # paho's steps without its per-PUBACK version checks and casts. A method calling the function, not
        # ``_do_on_publish = do_on_publish``: compiled (mypyc), a module function does not bind ``self``
        return do_on_publish(self, mid, reason_code, properties)

    def _update_inflight(self) -> mqtt.MQTTErrorCode:
        # paho calls this on every PUBACK and walks every stored outgoing message looking for queued
        # ones: O(in flight) per acknowledgement, 0.2 ms each with a thousand in flight. Messages are
        # queued only when more are stored than are in flight; otherwise there is nothing to send.
        if len(self._out_messages) <= self._inflight_messages:
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._update_inflight()


def _take_long_length(in_packet: Any, head: bytes) -> None:
    """Take in a remaining length of two bytes or more from a packet's ``head`` (its first three bytes
    or two) as paho's reader takes it: paho's loop reads the rest of it, if any."""
    count = in_packet["remaining_count"]
    count.append(head[1])
    length = head[1] & 127
    if len(head) < 3:
        in_packet["remaining_mult"] = 128
        in_packet["remaining_length"] = length
        return
    byte = head[2]
    count.append(byte)
    in_packet["remaining_mult"] = 16_384
    in_packet["remaining_length"] = length = length + (byte & 127) * 128
    if byte < 128:
        in_packet["have_remaining"] = 1
        in_packet["to_process"] = length


def _puback_reasons() -> dict[int, ReasonCode]:
    """One ReasonCode per code a PUBACK may carry (MQTT 5 §3.4.2.1)."""
    reasons = {}
    for code in (0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99):
        reasons[code] = ReasonCode(PacketTypes.PUBACK, identifier=code)
    return reasons


_PUBACK_REASONS = _puback_reasons()
#: A PUBLISH's remaining length at most (MQTT's variable byte integer; paho raises past it).
_MAX_PUBLISH = 268_435_455
_EMPTY_PROPERTIES = b"\x00"
_new_message = mqtt.MQTTMessage.__new__
_new_info = mqtt.MQTTMessageInfo.__new__
#: The one Condition of the ``info`` of every publish_packed message (see there).
_OUTGOING_CONDITION = threading.Condition()
_NO_PROPERTIES = Properties(PacketTypes.PUBACK)
