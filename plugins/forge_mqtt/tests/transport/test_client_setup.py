"""apply_credentials: the one place a paho client built from MqttSettings takes its credentials and TLS
(forge_mqtt's connection and forge_sparkplug's client both call it)."""

from __future__ import annotations

import ssl
from pathlib import Path

import paho.mqtt.client as mqtt

from forge_mqtt import MqttSettings, apply_credentials
from forge_mqtt.pki import Pki


def _client() -> mqtt.Client:
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)


def test_without_tls_only_the_credentials_are_set() -> None:
    client = _client()
    assert apply_credentials(client, MqttSettings(username="edge", password="secret")) is None
    assert (client.username, client.password) == ("edge", "secret")
    assert client._ssl is False  # paho's flag: no TLS set


def test_with_tls_the_ca_and_the_client_certificate_are_loaded(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path, ["edge-1"])
    pair = pki.client("edge-1")
    settings = MqttSettings(ca_file=str(pki.ca.cert), cert_file=str(pair.cert), key_file=str(pair.key),
                            tls_insecure=True)
    client = _client()
    context = apply_credentials(client, settings)
    assert isinstance(context, ssl.SSLContext) and client._ssl_context is context
    assert client._ssl is True and client._tls_insecure is True
    assert len(context.get_ca_certs()) == 1 and client.username is None
