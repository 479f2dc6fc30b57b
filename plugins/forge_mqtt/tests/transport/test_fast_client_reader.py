"""FastClient's packet reader (``_packet_read``): a packet's first three bytes in one recv, the rest
as paho reads it, whatever the socket holds at a time."""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import VariableByteIntegers

from forge_mqtt.transport.paho_adapter import FastClient


@pytest.mark.parametrize("step", [None, 1, 2, 3, 4, 5, 7])
def test_fast_client_reads_packets_whole_or_in_pieces(step: int | None) -> None:
    """A packet's first three bytes come in one recv; whatever the socket holds at a time (everything,
    a byte, three), the packets are read as paho reads them: a one-, two- and three-byte remaining
    length, an empty payload, packets with no body at all (PINGRESP) followed by another packet (whose
    command the head's recv took) or by nothing, and a one-byte body."""
    client = FastClient(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    got: list[tuple[str, bytes]] = []
    client.on_message = lambda c, u, m: got.append((m.topic, m.payload))

    def publish(topic: str, payload: bytes) -> bytes:  # QoS 0, no properties
        body = len(topic).to_bytes(2, "big") + topic.encode() + b"\x00" + payload
        return bytes([mqtt.PUBLISH]) + VariableByteIntegers.encode(len(body)) + body

    wire = (publish("a", b"1") + bytes([mqtt.PINGRESP, 0]) + publish("b", b"x" * 300) + publish("c", b"")
            + bytes([mqtt.PINGRESP, 0, mqtt.PINGRESP, 0]) + publish("d", b"y" * 20_000) + bytes([mqtt.PUBACK, 2, 0, 9])
            + bytes([mqtt.PINGRESP, 0]) + publish("e", b"z" * 120) + bytes([mqtt.PINGRESP, 0]))
    mine, theirs = socket.socketpair()
    with mine, theirs:
        mine.setblocking(False)
        client._sock = mine
        size = step or len(wire)
        for start in range(0, len(wire), size):
            theirs.sendall(wire[start:start + size])
            while (rc := client._packet_read()) == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS:
                pass
            assert rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN
        client._sock = None
    assert got == [("a", b"1"), ("b", b"x" * 300), ("c", b""), ("d", b"y" * 20_000), ("e", b"z" * 120)]
    assert client._in_packet["command"] == 0  # nothing of a next packet kept


def test_fast_client_reads_a_two_byte_length_publish_in_two_recvs() -> None:
    """A PUBLISH of 128 bytes up to 16 KiB (Forge's MQTT 5 events) takes two recv(): its command and
    both length bytes, then the rest (paho's reader takes four: command, each length byte, body)."""
    client = FastClient(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    got: list[bytes] = []
    client.on_message = lambda c, u, m: got.append(m.payload)
    body = b"\x00\x01t\x00" + b"p" * 200  # topic "t", no properties, QoS 0
    sizes: list[int] = []
    mine, theirs = socket.socketpair()
    with mine, theirs:
        mine.setblocking(False)

        class Counting:
            def recv(self, size: int) -> bytes:
                sizes.append(size)
                return mine.recv(size)

        client._sock = Counting()  # type: ignore[assignment]
        theirs.sendall(bytes([mqtt.PUBLISH]) + VariableByteIntegers.encode(len(body)) + body)
        assert client._packet_read() == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        client._sock = None
    assert got == [b"p" * 200]
    assert sizes == [3, len(body)]
