"""The plugin's hooks register the transport (the factory gets the model) and the bridge."""

from __future__ import annotations

from pathlib import Path

import pytest
from forge_core import RealClock
from forge_core.transport import TransportContext

from forge_kafka import BridgeParams, KafkaSettings, KafkaTransport

pytestmark = pytest.mark.timeout(120)



def test_plugin_registers_transport_and_bridge(tmp_path: Path) -> None:
    from forge_core.plugin import ComponentRegistry, TransportRegistry

    from forge_kafka import plugin

    transports, components = TransportRegistry(), ComponentRegistry()
    plugin.forge_register_transports(transports)
    plugin.forge_register_components(components)
    assert "kafka" in transports and "kafka.bridge" in components
    entry = transports.get("kafka")  # the runtime's path: the declared model, defaults filled, to the factory
    settings = entry.build_settings({"bootstrap": "x:1"}, where="transports.k.settings")
    assert isinstance(settings, KafkaSettings) and settings.batch_size == 500
    context = TransportContext(RealClock(), tmp_path, "acme", None, tmp_path)
    transport = entry.value("k", settings, context)
    assert isinstance(transport, KafkaTransport) and transport.settings is settings and transport.plant == "acme"
    assert components.get("kafka.bridge").settings is BridgeParams
