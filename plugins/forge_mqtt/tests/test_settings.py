"""MqttSettings: one pydantic declaration gives the manifest schema, the defaults, the bounds and
cross-field checks (SettingsError naming the key), and the secrets that must come from ${env:VAR}."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from forge_core import ManifestError, SettingsError
from forge_core.runtime import load_plant
from forge_core.transport import DeliveryGuarantee

from forge_mqtt import MqttSettings, MqttTransport


def problems(exc: SettingsError) -> dict[str, str]:
    return dict(exc.problems)


def test_unknown_key_is_refused_naming_the_transport_and_key() -> None:
    with pytest.raises(SettingsError) as info:
        MqttSettings.load({"colour": "red"}, where="transports.edge.settings")
    assert "unknown key" in problems(info.value)["transports.edge.settings.colour"]


@pytest.mark.parametrize(("key", "value"), [
    ("max_inflight", 70000), ("max_inflight", 0), ("port", 0), ("port", 65536), ("keepalive", 0),
    ("connect_timeout", 0), ("session_expiry", -1), ("session_expiry", 2**32), ("qos", 2),
    ("content_mode", "xml"), ("protocol", "4"), ("max_redeliveries", -1), ("outbox_max_bytes", 0),
])
def test_bounds_are_refused_naming_the_field(key: str, value: object) -> None:
    with pytest.raises(SettingsError) as info:
        MqttSettings.load({key: value}, where="transports.edge.settings")
    assert list(problems(info.value)) == [f"transports.edge.settings.{key}"]


def test_the_manifest_schema_has_the_same_bounds_and_defaults() -> None:
    schema = MqttSettings.json_schema()
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert props["max_inflight"]["maximum"] == 65000 and props["max_inflight"]["default"] == 1000
    assert props["protocol"]["enum"] == ["5", "3.1.1", 5]  # YAML's unquoted 5 is a number
    assert props["qos"]["enum"] == [0, 1]


def test_cross_field_checks_name_the_fields() -> None:
    for data, words in [
        ({"cert_file": "client.pem"}, "cert_file and key_file go together"),
        ({"clean_start": False}, "clean_start false needs session_expiry > 0"),
        ({"reconnect_min_delay": 5, "reconnect_max_delay": 1}, "reconnect_max_delay must be >= reconnect_min_delay"),
        ({"password": "x"}, "password given without username"),
    ]:
        with pytest.raises(SettingsError, match=words):
            MqttSettings.load(data, where="transports.edge.settings")
    with pytest.raises(SettingsError, match="qos_by_topic"):
        MqttSettings.load({"qos_by_topic": {"a/#/b": 0}})


def test_message_expiry_by_topic_is_checked_and_looked_up_by_pattern() -> None:
    settings = MqttSettings.load({"message_expiry_by_topic": {"cmd/+": 20, "cmd/#": 60}})
    assert settings.expiry_for("cmd/assign") == 20, "the first matching pattern wins"
    assert settings.expiry_for("cmd/a/b") == 60 and settings.expiry_for("telemetry/1") is None
    for data, words in [
        ({"message_expiry_by_topic": {"cmd/#/x": 20}}, "cmd/#/x"),
        ({"message_expiry_by_topic": {"cmd": 0}}, r"0 is not 1\.\.4294967295 seconds"),
        ({"message_expiry_by_topic": {"cmd": 2**32}}, "not 1..4294967295"),
        ({"message_expiry_by_topic": {"cmd": 20}, "protocol": "3.1.1"}, "needs protocol 5"),
    ]:
        with pytest.raises(SettingsError, match=words) as info:
            MqttSettings.load(data, where="transports.edge.settings")
        assert any(path.startswith("transports.edge.settings") for path in problems(info.value)), info.value


def test_typed_values_and_derived_settings() -> None:
    settings = MqttSettings.load({"qos": 1, "qos_by_topic": {"telemetry/#": 0}, "protocol": 5})
    assert settings.protocol == "5" and settings.is_v5
    assert settings.qos_for("telemetry/m1/temp") == 0 and settings.qos_for("orders/1") == 1
    assert MqttSettings(ca_file="/etc/ca.pem").tls, "a CA file implies TLS"
    assert MqttSettings().clean and not MqttSettings(session_expiry=60).clean
    assert MqttTransport("a", qos=0).guarantee is DeliveryGuarantee.AT_MOST_ONCE
    assert MqttTransport("a").guarantee is DeliveryGuarantee.AT_LEAST_ONCE
    with pytest.raises(SettingsError, match=r"transports\.a\.settings\.colour"):
        MqttTransport("a", colour="red")


def test_secrets_must_come_from_the_environment(tmp_path: Path) -> None:
    assert {"password", "key_password"} <= MqttSettings.secret_fields

    def write(password: str) -> Path:
        (tmp_path / "plant.yaml").write_text(textwrap.dedent(f"""
            version: 1
            plant: {{name: bakery}}
            plugins: [forge-mqtt]
            transports:
              edge:
                type: mqtt
                settings: {{host: broker.local, username: plant, password: "{password}"}}
        """))
        return tmp_path

    with pytest.raises(ManifestError, match=r"transports\.edge\.settings\.password.*\$\{env:VAR\}"):
        load_plant(write("s3cret"), env={})
    _, manifest = load_plant(write("${env:MQTT_PASSWORD}"), env={"MQTT_PASSWORD": "s3cret"})
    assert manifest.transports["edge"].settings["password"] == "s3cret"
