"""FastClient's ``publish_packed`` and ``ack``: the packets, the stored message and its state are
paho's own ``publish``/``ack`` gives (compared side by side with paho's client on a socket that keeps
what is queued), and whatever the shortcut does not cover goes to paho."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from forge_mqtt.transport.paho_adapter import FastClient, GuardedClient, PackedProperties, utf8

_TYPE = b"\x03" + utf8("application/cloudevents+json")


class _Sink:
    def send(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        pass


def _client(kind: type[mqtt.Client], protocol: int, inflight: int = 20) -> mqtt.Client:
    client = kind(mqtt.CallbackAPIVersion.VERSION2, protocol=protocol, manual_ack=True)
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    client.on_socket_register_write = lambda *args: None  # packets stay queued, not written
    client._sock = _Sink()  # type: ignore[assignment]
    return client


def _state(client: mqtt.Client, infos: list[mqtt.MQTTMessageInfo]) -> tuple[Any, ...]:
    stored = [(m.mid, m.topic, bytes(m.payload), m.qos, m.retain, m.dup, m.state, m.properties is not None)
              for m in client._out_messages.values()]
    packets = [(p["command"], p["mid"], p["qos"], bytes(p["packet"])) for p in client._out_packet]
    return [(int(i.rc), i.mid, i._published) for i in infos], stored, packets, client._inflight_messages


@pytest.mark.parametrize("size", [10, 200, 20_000])
@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311])
def test_publish_packed_queues_what_paho_publish_queues(protocol: int, size: int) -> None:
    """Same packets (one- to three-byte remaining lengths), stored messages, states and infos as paho's
    ``publish``, past the in-flight window too (queued, not sent)."""
    props = PackedProperties(_TYPE, {}) if protocol == mqtt.MQTTv5 else None
    body = b"x" * size
    fast, plain = _client(FastClient, protocol, inflight=2), _client(mqtt.Client, protocol, inflight=2)
    fast_infos = [fast.publish_packed("a/é", utf8("a/é"), body, 1, props) for _ in range(3)]
    plain_infos = [plain.publish("a/é", body, 1, properties=props) for _ in range(3)]
    assert _state(fast, fast_infos) == _state(plain, plain_infos)
    assert [m.state for m in fast._out_messages.values()] == [mqtt.mqtt_ms_wait_for_puback] * 2 + [mqtt.mqtt_ms_queued]


def test_a_packed_publish_is_published_on_its_puback() -> None:
    client = _client(FastClient, mqtt.MQTTv5)
    acked: list[int] = []
    client.on_publish = lambda c, u, mid, reason, props: acked.append(mid)
    info = client.publish_packed("a", utf8("a"), b"{}", 1, None)
    client._in_packet = {**client._in_packet, "command": mqtt.PUBACK, "packet": bytearray(b"\x00\x01")}
    assert client._handle_pubackcomp("PUBACK") == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert acked == [1] and info.is_published() and not client._out_messages and client._inflight_messages == 0


@pytest.mark.parametrize("case", ["qos0", "logging", "no socket", "queue limit"])
def test_publish_packed_leaves_the_rest_to_paho(case: str) -> None:
    """QoS 0, a client that logs, no socket (paho keeps the message) and a queue limit: paho's publish."""
    states = []
    for kind in (FastClient, mqtt.Client):
        client = _client(kind, mqtt.MQTTv5)
        qos = 0 if case == "qos0" else 1
        if case == "logging":
            client.on_log = lambda *args: None
        elif case == "no socket":
            client._sock = None
        elif case == "queue limit":
            client.max_queued_messages_set(5)
        props = Properties(PacketTypes.PUBLISH)
        if isinstance(client, FastClient):
            info = client.publish_packed("t", utf8("t"), b"{}", qos, props)  # type: ignore[arg-type]
        else:
            info = client.publish("t", b"{}", qos, properties=props)
        states.append(_state(client, [info]))
    assert states[0] == states[1]


def test_guarded_client_publish_packed_is_paho_publish() -> None:
    client = _client(GuardedClient, mqtt.MQTTv5)
    info = client.publish_packed("t", utf8("t"), b"{}", 1, None)  # type: ignore[attr-defined]
    assert info.mid == 1 and list(client._out_messages) == [1]


@pytest.mark.parametrize("qos", [1, 2])
def test_ack_queues_paho_acknowledgement(qos: int) -> None:
    sent = []
    for kind in (FastClient, mqtt.Client):
        client = _client(kind, mqtt.MQTTv5)
        assert client.ack(0x0102, qos) == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        assert client.ack(0x0304, 0) == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS  # QoS 0: nothing to send
        sent.append([(p["command"], p["mid"], p["qos"], bytes(p["packet"])) for p in client._out_packet])
    assert sent[0] == sent[1]
    assert sent[0][0][3] == bytes([mqtt.PUBACK if qos == 1 else mqtt.PUBCOMP, 2, 1, 2])


@pytest.mark.parametrize("suppress", [False, True])
@pytest.mark.parametrize("fails", [False, True])
def test_a_puback_does_what_paho_does_on_publish(fails: bool, suppress: bool) -> None:
    """FastClient's ``_do_on_publish`` (publish_done.py): the same callback arguments, error handling
    and state after as paho's, the queued publish past the window sent on the first PUBACK."""
    outcomes = []
    for kind in (FastClient, mqtt.Client):
        client = _client(kind, mqtt.MQTTv5, inflight=2)
        client.suppress_exceptions = suppress
        calls: list[tuple[Any, ...]] = []

        def on_publish(*args: Any, calls: list[tuple[Any, ...]] = calls) -> None:
            calls.append(args)
            if fails:
                raise ValueError("callback")

        client.on_publish = on_publish
        infos = [client.publish("a", b"{}", 1) for _ in range(3)]
        client._in_packet = {**client._in_packet, "command": mqtt.PUBACK, "packet": bytearray(b"\x00\x01")}
        if fails and not suppress:
            with pytest.raises(ValueError, match="callback"):
                client._handle_pubackcomp("PUBACK")
            outcome: Any = "raised"
        else:
            outcome = client._handle_pubackcomp("PUBACK")
        assert [args[0] for args in calls] == [client]
        outcomes.append((outcome, [args[2:4] for args in calls], [type(args[4]) for args in calls],
                         _state(client, infos)))
    assert outcomes[0] == outcomes[1]


def test_a_version_1_client_gets_paho_on_publish() -> None:
    with pytest.warns(DeprecationWarning, match="Callback API version 1"):  # paho's; the API is still served
        client = FastClient(mqtt.CallbackAPIVersion.VERSION1, protocol=mqtt.MQTTv311)
    client._sock = _Sink()  # type: ignore[assignment]
    client.on_socket_register_write = lambda *args: None
    acked: list[tuple[Any, ...]] = []
    client.on_publish = lambda *args: acked.append(args)
    info = client.publish("a", b"{}", 1)
    client._in_packet = {**client._in_packet, "command": mqtt.PUBACK, "packet": bytearray(b"\x00\x01")}
    assert client._handle_pubackcomp("PUBACK") == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
    assert acked == [(client, None, 1)] and info.is_published()
