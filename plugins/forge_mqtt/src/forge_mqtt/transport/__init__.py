"""The MQTT transport, split like FastStream's brokers.

- :mod:`.connection` — the paho client on the asyncio loop: socket adapter, connect/CONNACK,
  reconnect with :class:`forge_core.tactics.Backoff`, the control queue;
- :mod:`.client_setup` — the paho client a connection starts with (settings, TLS, callbacks);
- :mod:`.publisher` — publish, the in-flight window, the outbox and its replay;
- :mod:`.subscriber` — subscriptions, Subscription Identifiers, delivery and local redelivery;
- :mod:`.certificates` — birth and death certificates, the Will, :class:`DeathWatch`;
- :mod:`.paho_adapter` — every use of paho's private API, pinned by tests/transport/test_paho_adapter.py;
- :mod:`.packed_properties` — PUBLISH properties packed once, MQTT UTF-8 strings;
- :mod:`.decoder` — the one-pass MQTT 5 PUBLISH decoder;
- :mod:`.transport` — the thin :class:`MqttTransport` composing them, and the registry's factory.
"""

from forge_mqtt.transport.certificates import BIRTH_TOPIC, DEATH_TOPIC, DeathWatch
from forge_mqtt.transport.transport import MqttRefused, MqttTransport, factory

__all__ = ["BIRTH_TOPIC", "DEATH_TOPIC", "DeathWatch", "MqttRefused", "MqttTransport", "factory"]
