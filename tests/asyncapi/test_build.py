"""What forge asyncapi puts in a plant's document: channels with wildcard levels as parameters,
operations per component, MQTT/Kafka bindings, messages from the registered schemas; errors
naming the file, component and declaration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forge_core.asyncapi import build_document, document_errors
from forge_core.errors import ForgeError
from forge_core.plugin import get_plugin_manager

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def sensors() -> dict:
    return build_document(EXAMPLES / "sensor_monitoring", profile="cluster", env={})


@pytest.fixture(scope="module")
def pasta() -> dict:
    return build_document(EXAMPLES / "pasta_plant", profile="distributed", env={})


def test_a_wildcard_level_is_a_parameter_named_by_the_publisher(sensors: dict) -> None:
    channel = sensors["channels"]["mqtt.sensors.sensor_id.reading"]
    assert channel["address"] == "sensors/{sensor_id}/reading"  # mqtt_sensors' topic param, the bridge's sensors/+/
    assert set(channel["parameters"]) == {"sensor_id"}
    assert channel["servers"] == [{"$ref": "#/servers/mqtt"}]
    ops = {k: v for k, v in sensors["operations"].items()
           if v["channel"]["$ref"] == "#/channels/mqtt.sensors.sensor_id.reading"}
    assert {(op["x-forge-component"], op["action"]) for op in ops.values()} == {("mqtt_sensors", "send"),
                                                                             ("bridge", "receive")}


def test_kafka_channel_operation_and_message_bindings(sensors: dict) -> None:
    channel = sensors["channels"]["kafka.sensor-data"]
    assert channel["bindings"]["kafka"] == {"topic": "sensor-data", "partitions": 3, "replicas": 3,
                                            "bindingVersion": "0.5.0"}
    receive = sensors["operations"]["processors.receive.kafka.sensor-data"]
    assert receive["action"] == "receive"
    # group_template "{group}" and the processors' group param: the consumer group operators see
    assert receive["bindings"]["kafka"]["groupId"] == {"type": "string", "const": "sensor-processors"}
    send = sensors["operations"]["sensors.send.kafka.sensor-data"]
    assert send["messages"] == [{"$ref": "#/channels/kafka.sensor-data/messages/mms.sensor_reading"}]
    message = channel["messages"]["mms.sensor_reading"]
    assert message["bindings"]["kafka"]["key"]["description"] == "record key: sensor_id"
    # Kafka's default structured content mode: the payload is the CloudEvents document around the data
    assert message["contentType"] == "application/cloudevents+json"
    schemas = get_plugin_manager()
    schemas.collect()
    reading = schemas.schemas.get("mms.sensor_reading").schema
    assert message["payload"]["schema"]["properties"]["data"]["properties"] == reading["properties"]
    assert sensors["servers"]["kafka"]["protocol"] == "kafka"


def test_mqtt_5_binary_messages_carry_cloudevents_headers(sensors: dict) -> None:
    message = sensors["channels"]["mqtt.sensors.sensor_id.reading"]["messages"]["mms.sensor_reading"]
    assert message["contentType"] == "application/json"
    assert {"id", "source", "type", "specversion", "time"} <= set(message["headers"]["properties"])
    assert message["headers"]["required"] == ["specversion", "id", "source", "type"]
    assert sensors["servers"]["mqtt"]["protocolVersion"] == "5"


def test_mqtt_qos_retain_and_expiry_bindings(pasta: dict) -> None:
    beat = pasta["operations"]["machine.send.machines.heartbeats"]
    assert beat["action"] == "send"
    assert beat["bindings"]["mqtt"] == {"qos": 1, "retain": False, "bindingVersion": "0.2.0"}
    assert beat["x-forge-instances"] == ["machine-0", "machine-1", "machine-2"]
    # message_expiry_by_topic of the bridge's transport: commands expire after 20 s
    assign = pasta["operations"]["bridge.send.mqtt.productionPlan.assignBlade"]
    assert assign["bindings"]["mqtt"]["messageExpiryInterval"] == 20
    # MQTT 3.1.1 (the machines' transport): the plain body, no attribute headers
    assert "headers" not in pasta["channels"]["machines.heartbeats"]["messages"]["sched.machine_heartbeat"]
    assert pasta["servers"]["machines"]["protocolVersion"] == "3.1.1"


def test_kafka_topics_are_named_as_kafka_names_them(pasta: dict) -> None:
    channel = pasta["channels"]["kafka.forge.status.level3"]
    assert channel["address"] == "forge.status.{level3}"  # '/' becomes '.'; no publisher names the level
    assert set(channel["parameters"]) == {"level3"}


def test_a_subscription_without_types_gets_what_is_published_where_it_matches() -> None:
    doc = build_document(EXAMPLES / "pasta_plant", env={})
    monitor = doc["operations"]["monitor.receive.bus.productionPlan.rest"]
    assert monitor["action"] == "receive"
    assert {m["$ref"].rsplit("/", 1)[-1] for m in monitor["messages"]} >= {"sched.assign_blade", "sched.blade_swapped"}
    assert set(doc["channels"]["bus.productionPlan.rest"]["parameters"]) == {"rest"}


def test_secrets_never_reach_the_document(pasta: dict) -> None:
    text = json.dumps(pasta)
    assert "password" not in text.lower() and "PASTA_COMMAND_SECRET" not in text


def test_unknown_plant_and_profile_are_named(tmp_path: Path) -> None:
    missing = r"no plant at .*nowhere: .*nowhere does not exist \(give a plant directory or its plant\.yaml\)"
    with pytest.raises(ForgeError, match=missing):
        build_document(tmp_path / "nowhere")
    with pytest.raises(ForgeError, match=r"plant\.yaml.*unknown profile 'nope'; defined profiles: embedded"):
        build_document(EXAMPLES / "pasta_plant", profile="nope")


PLUGIN = '''
from forge_core import Component, Publishes, Settings, hookimpl


class Params(Settings):
    out_topic: str = "bakery/out"


class Oven(Component):
    Params = Params
    publishes = (Publishes("bakery.baked", param=PARAM),)


@hookimpl
def forge_register_components(registry):
    registry.add("bakery.oven", Oven)
'''


def _bakery(tmp_path: Path, param: str) -> Path:
    (tmp_path / "oven.py").write_text(PLUGIN.replace("PARAM", repr(param)))
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "bakery.baked.json").write_text(json.dumps({"type": "object", "title": "Baked"}))
    (tmp_path / "plant.yaml").write_text("version: 1\nplant: {name: bakery}\nlocal_plugins: [oven.py]\n"
                                         "schemas: [schemas]\ntransports: {bus: {type: memory}}\n"
                                         "components: {oven: {type: bakery.oven}}\n")
    return tmp_path


def test_a_declaration_naming_a_missing_param_names_file_component_and_param(tmp_path: Path) -> None:
    with pytest.raises(ForgeError) as caught:
        build_document(_bakery(tmp_path, "topics.out"), plugins=get_plugin_manager())
    message = str(caught.value)
    assert "plant.yaml: components.oven (type bakery.oven, class" in message
    assert "param 'topics.out': no 'topics' in the params" in message


def test_a_local_plugin_component_is_documented(tmp_path: Path) -> None:
    doc = build_document(_bakery(tmp_path, "out_topic"), plugins=get_plugin_manager())
    assert document_errors(doc) == []
    assert "servers" not in doc  # the memory bus is no server
    op = doc["operations"]["oven.send.bus.bakery.out"]
    assert op["summary"] == "oven (bakery.oven) publishes on bakery/out"
    assert doc["channels"]["bus.bakery.out"]["messages"]["bakery.baked"]["title"] == "Baked"
