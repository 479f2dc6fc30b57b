"""A component stopped while it replaces its MQTT connection leaves no connection behind.

The edge node starts a new connection after its primary host's STATE offline, the host after an election or
deposition; stop() may run while the old connection is being closed (a plant stopping its host first makes
its edge node see that STATE offline as it stops). Found by benchmarks/bench_sparkplug.py: paho threads and
broker connections outlived their plant.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from forge_sparkplug.codec import Metric, encode

from .conftest import SparkplugPlant, Wire, broker_params, until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]


def _paho_threads(client_id: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(f"paho-mqtt-client-{client_id}")]


def test_edge_node_stopped_while_ending_its_session_leaves_no_client(tmp_path: Path, mosquitto_server: Any) -> None:
    async def main() -> None:
        plant = SparkplugPlant(tmp_path / "plant", {"edge": {"type": "sparkplug.edge_node", "params": {
            "mqtt": broker_params(mosquitto_server.host, mosquitto_server.port), "group": "stops", "node": "e1",
            "primary_host": "gone", "metrics": [{"name": "X", "datatype": "Int32", "initial": 0}]}}},
            (mosquitto_server.host, mosquitto_server.port))
        await plant.start()
        edge = plant.component("edge")
        await until(lambda: edge.client.connected, what="edge node connected")
        # the primary host's STATE offline, and the runtime stopping the node while the old connection closes
        await asyncio.gather(edge._host_offline(), edge.stop())
        left = edge.client.client._thread, _paho_threads("forge-spb-stops-e1")
        await plant.stop()  # (stops the node again, which would hide a client started after the first stop)
        assert left == (None, [])

    asyncio.run(main())


def test_host_stopped_while_switching_roles_leaves_no_client(tmp_path: Path, mosquitto_server: Any) -> None:
    async def main() -> None:
        plant = SparkplugPlant(tmp_path / "plant", {"host": {"type": "sparkplug.host", "params": {
            "mqtt": broker_params(mosquitto_server.host, mosquitto_server.port), "host_id": "stops-h",
            "groups": ["stops"]}}}, (mosquitto_server.host, mosquitto_server.port))
        await plant.start()
        host = plant.component("host")
        await until(lambda: host.primary and host.client.connected, what="primary host connected")
        # a deposition, and the runtime stopping the host while the primary's connection closes
        await asyncio.gather(host._switch(False, host.epoch), host.stop())
        left = host.client.client._thread, _paho_threads("forge-spb-host-stops-h")
        await plant.stop()  # (stops the host again, which would hide a client started after the first stop)
        assert left == (None, [])

    asyncio.run(main())


def test_a_cleanly_stopped_primary_host_leaves_state_offline_retained(tmp_path: Path, mosquitto_server: Any) -> None:
    """tck-id-host-topic-phid-death-payload-timestamp-disconnect-clean: the retained STATE after a clean stop is
    offline. The host subscribes its own STATE and answers an offline one with online while it is primary
    (tck-id-message-flow-hid-sparkplug-state-message-delivered); the echo of its own stop's offline STATE must not
    be answered, or edge nodes connecting later believe a stopped host is online."""
    topic = "spBv1.0/STATE/stops-r"

    async def main() -> None:
        plant = SparkplugPlant(tmp_path / "plant", {"host": {"type": "sparkplug.host", "params": {
            "mqtt": broker_params(mosquitto_server.host, mosquitto_server.port), "host_id": "stops-r",
            "groups": ["stops"]}}}, (mosquitto_server.host, mosquitto_server.port))
        await plant.start()
        host = plant.component("host")
        await until(lambda: host.primary and host.client.connected, what="primary host connected")
        # its own STATE online has come back to it (so the echo of the offline one would too): the marker is
        # an NBIRTH a plain client publishes once it has seen that STATE online; the broker queues it for
        # the host after the STATE, and the host counts it
        wire = Wire(mosquitto_server.host, mosquitto_server.port, client_id="marker-stops-r")
        try:
            mine = {"online": True, "timestamp": host.state_timestamp}  # not a stale retained one
            await until(lambda: any(json.loads(s.body) == mine for s in wire.on(topic) if s.body),
                        what=f"the host's STATE online {mine}", seen=lambda: wire.on(topic))
            wire.publish("spBv1.0/stops/NBIRTH/marker", encode(1, [Metric(name="bdSeq", datatype=4, value=0)], 0),
                         qos=1)
            await until(lambda: host.stats["births"] == 1, what="the host reading the marker NBIRTH",
                        seen=lambda: host.stats)
        finally:
            wire.close()
        await plant.stop()
        assert host.stats["state_republished"] == 0

    asyncio.run(main())
    late = Wire(mosquitto_server.host, mosquitto_server.port, client_id="late-stops-r")  # gets the retained STATE
    try:
        (retained,) = asyncio.run(until(lambda: late.on(topic), what="retained STATE"))
        assert retained.retain and json.loads(retained.body)["online"] is False
    finally:
        late.publish(topic, b"", qos=1, retain=True)
        late.close()
