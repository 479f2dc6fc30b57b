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
