"""MqttTransport keeps the core transport contract against a real Mosquitto.

MQTT 5 only: on 3.1.1 there are no user properties, so a message arrives as a plain JSON body
without its attributes (the plant's bindings type it); test_transport.py covers 3.1.1."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from forge_core.testing import TransportConformance
from forge_core.transport import Transport

from forge_mqtt import MqttTransport
from forge_mqtt.testing import MosquittoServer

pytestmark = pytest.mark.servers


class TestMqttConformance(TransportConformance):
    settle = 0.05
    protocol = "5"
    qos = 1

    @pytest.fixture(autouse=True)
    def _broker(self, mosquitto_server: MosquittoServer, tmp_path: Path) -> None:
        self.broker = mosquitto_server
        self.data_dir = tmp_path

    async def make_transport(self, name: str) -> Transport:
        return MqttTransport(name, host=self.broker.host, port=self.broker.port, protocol=self.protocol,
                             qos=self.qos, data_dir=Path(tempfile.mkdtemp(dir=self.data_dir)))


class TestMqttQos0Conformance(TestMqttConformance):
    qos = 0
