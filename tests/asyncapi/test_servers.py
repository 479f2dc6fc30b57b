"""Servers from transports: MQTT and Kafka described from their settings, memory is none."""

from __future__ import annotations

from forge_core.asyncapi.servers import server_of, wire_of
from forge_core.manifest.model import TransportSpec


def test_mqtt_server_with_tls_and_session() -> None:
    settings = {"host": "broker", "port": 8883, "protocol": "3.1.1", "ca_file": "ca.pem", "client_id": "c1",
                "keepalive": 5, "session_expiry": 0}
    wire = wire_of(TransportSpec("m", "mqtt", settings), settings)
    server = server_of(wire)
    assert server is not None and server["host"] == "broker:8883" and server["protocol"] == "secure-mqtt"
    assert server["protocolVersion"] == "3.1.1" and not wire.headers
    assert server["bindings"]["mqtt"] == {"bindingVersion": "0.2.0", "clientId": "c1", "keepAlive": 5,
                                          "sessionExpiryInterval": 0, "cleanSession": True}


def test_kafka_server_first_bootstrap_and_security() -> None:
    settings = {"bootstrap": "k1:9092, k2:9092", "config": {"security.protocol": "SASL_PLAINTEXT"}}
    server = server_of(wire_of(TransportSpec("k", "kafka", settings), settings))
    assert server is not None and server["host"] == "k1:9092" and server["protocol"] == "kafka-secure"
    assert "k1:9092, k2:9092" in server["description"]


def test_memory_is_no_server_and_unknown_types_keep_their_name() -> None:
    assert server_of(wire_of(TransportSpec("bus", "memory"), {})) is None
    other = server_of(wire_of(TransportSpec("z", "zenoh"), {"url": "tcp/1.2.3.4:7447"}))
    assert other == {"host": "tcp/1.2.3.4:7447", "protocol": "zenoh",
                     "description": "Forge transport `z` (type zenoh)."}


def test_mqtt_content_mode_follows_forge_mqtt_s_default() -> None:
    """Structured on MQTT 5 unless set, binary (the bare body) on 3.1.1; a set mode wins on either."""
    def mode(settings: dict[str, object]) -> tuple[str, bool]:
        wire = wire_of(TransportSpec("m", "mqtt", settings), settings)
        return wire.content_mode, wire.headers

    assert mode({}) == ("structured", True)
    assert mode({"protocol": "3.1.1"}) == ("binary", False)
    assert mode({"content_mode": "binary"}) == ("binary", True)
    assert mode({"protocol": "3.1.1", "content_mode": "structured"}) == ("structured", True)
