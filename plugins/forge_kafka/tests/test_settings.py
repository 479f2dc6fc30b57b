"""KafkaSettings: one declaration gives the schema, the defaults and SettingsError naming the field."""

from __future__ import annotations

import pytest
from forge_core import SettingsError

from forge_kafka import KafkaSettings, KafkaTransport, TopicSpec

pytestmark = pytest.mark.timeout(120)



def test_settings_errors_name_the_transport_and_field() -> None:
    with pytest.raises(SettingsError, match=r"transports\.orders\.settings\.bootstrap: required key is missing"):
        KafkaSettings.load({}, where="transports.orders.settings")
    with pytest.raises(SettingsError, match=r"transports\.orders\.settings\.bootstrp: unknown key"):
        KafkaSettings.load({"bootstrap": "x:1", "bootstrp": "y"}, where="transports.orders.settings")
    with pytest.raises(SettingsError, match=r"orders\.settings\.content_mode: .*'structured' or 'binary'"):
        KafkaSettings.load({"bootstrap": "x:1", "content_mode": "xml"}, where="transports.orders.settings")
    with pytest.raises(SettingsError, match=r"orders\.settings\.topics\.plant/x\.partitions"):
        KafkaTransport("orders", {"bootstrap": "x:1", "topics": {"plant/x": {"partitions": 0}}})
    with pytest.raises(SettingsError) as every:  # every problem at once, one error class
        KafkaSettings.load({"auto_offset_reset": "middle", "batch_size": 0})
    assert {path for path, _ in every.value.problems} == {"bootstrap", "auto_offset_reset", "batch_size"}


def test_settings_fill_defaults_and_keep_librdkafka_passthrough() -> None:
    settings = KafkaSettings.load({"bootstrap": "x:1", "topics": {"plant/orders": {"partitions": 3}},
                                   "config": {"security.protocol": "SSL"}, "consumer": {"fetch.min.bytes": 1}})
    assert settings.topics["plant/orders"] == TopicSpec(partitions=3, replication=1, config={})
    assert settings.topic_spec("plant/other") == TopicSpec(partitions=1, replication=1)
    assert settings.config == {"security.protocol": "SSL"} and settings.consumer == {"fetch.min.bytes": 1}
    transport = KafkaTransport("k", settings, plant="p")
    assert transport.settings is settings
    assert transport.connection.common_config()["security.protocol"] == "SSL"
    schema = KafkaSettings.json_schema()  # what forge validate checks the manifest against
    assert schema["required"] == ["bootstrap"] and schema["additionalProperties"] is False
    assert schema["properties"]["max_redeliveries"]["default"] == 3


def test_librdkafka_judges_the_passthrough_maps_at_validate_time(tmp_path) -> None:
    """Issue 11 §7: `fetch.wait.max.ms: -1` and a misspelt property were accepted and failed at start."""
    with pytest.raises(SettingsError) as refused:
        KafkaSettings.load({"bootstrap": "x:1", "consumer": {"fetch.wait.max.ms": -1},
                            "producer": {"lingr.ms": 5}, "config": {"linger.ms": 5}},
                           where="transports.kafka.settings")
    found = dict(refused.value.problems)
    assert set(found) == {"transports.kafka.settings.consumer", "transports.kafka.settings.producer"}
    assert 'fetch.wait.max.ms" value -1 is outside allowed range' in found["transports.kafka.settings.consumer"]
    assert 'No such configuration property: "lingr.ms"' in found["transports.kafka.settings.producer"]

    from forge_core.runtime import load_plant
    (tmp_path / "plant.yaml").write_text(
        "version: 1\nplant: {name: kv}\nplugins: [forge_kafka]\ntransports:\n"
        "  kafka: {type: kafka, settings: {bootstrap: '127.0.0.1:9', consumer: {fetch.wait.max.ms: -1}}}\n")
    from forge_core.errors import ManifestError
    with pytest.raises(ManifestError) as invalid:  # forge validate's verdict, with file and line
        load_plant(tmp_path)
    assert "plant.yaml:5 at transports.kafka.settings.consumer" in str(invalid.value)
    assert "outside allowed range 0..300000" in str(invalid.value)


def test_the_idempotent_producer_needs_acks_all_and_says_so_at_validate_time() -> None:
    for acks in (1, "1", "0"):
        with pytest.raises(SettingsError, match=r"orders\.settings\.producer: .*acks .*idempotent.*enable\.idempotence"):
            KafkaSettings.load({"bootstrap": "x:1", "producer": {"acks": acks}}, where="transports.orders.settings")
    for fine in ({"acks": "all"}, {"acks": -1}, {"enable.idempotence": False, "acks": 1},
                 {"enable.idempotence": "false", "acks": "1"}, {}):
        KafkaSettings.load({"bootstrap": "x:1", "producer": fine})
