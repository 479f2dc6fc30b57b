"""What the runtime hands a transport factory (TransportContext): the plant's meter provider when
telemetry or /metrics is on (the default), so a transport can record metrics of its own (the Kafka
transport's lag, rebalances and produce errors), and None when both are off."""

from __future__ import annotations

import pytest

from forge_core.testing import TestPlant

PROBE_PLUGIN = '''
from forge_core import hookimpl
from forge_core.transport import MemoryTransport


def probe(name, settings, context):
    transport = MemoryTransport(name)
    transport.context = context
    return transport


@hookimpl
def forge_register_transports(registry):
    registry.add("test.probe", probe)
'''

PLANT = """
version: 1
plant: {{name: probe}}
local_plugins: [machines.py]
schemas: [schemas]
transports: {{bus: {{type: test.probe}}}}
storage: {{migrate_on_start: false}}
{telemetry}
"""


@pytest.mark.parametrize("telemetry", [
    "",  # /metrics is on by default (runtime.metrics): its Prometheus reader sits on the plant's meter provider
    "telemetry: {metrics: {exporter: console, interval: 3600}}",
    "runtime: {metrics: {enabled: false}}",  # no exporter and no /metrics: no telemetry at all
])
def test_a_transport_factory_gets_the_plants_meter_provider_when_telemetry_is_on(plant_dir, telemetry):
    with TestPlant(plant_dir(PLANT.format(telemetry=telemetry), plugin=PROBE_PLUGIN)) as plant:
        context = plant.transport().context  # type: ignore[attr-defined]
        if "enabled: false" not in telemetry:
            assert plant.runtime.telemetry is not None
            assert context.meter_provider is plant.runtime.telemetry.meter_provider
        else:
            assert plant.runtime.telemetry is None
            assert context.meter_provider is None
