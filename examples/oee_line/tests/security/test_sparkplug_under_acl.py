"""The real Sparkplug components (edge node, primary host, SCADA host) each with its own certificate
under the shipped ACL."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from forge_mqtt.pki import Pki
from forge_mqtt.testing import MosquittoServer
from forge_sparkplug.codec import encode
from oee_security_client import GROUP, Client, spb

from forge_core.runtime import Runtime, load_plant

pytestmark = pytest.mark.servers


def mqtt_settings(broker: MosquittoServer, pki: Pki, cn: str) -> dict[str, Any]:
    pair = pki.client(cn)
    return {"host": broker.host, "port": broker.port, "ca_file": str(pki.ca.cert), "cert_file": str(pair.cert),
            "key_file": str(pair.key), "keepalive": 5, "reconnect_min_delay": 0.5, "reconnect_max_delay": 1.0}


async def until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def test_sparkplug_components_work_under_the_acl(broker: MosquittoServer, pki: Pki, clients: list[Client],
                                                 tmp_path: Path) -> None:
    """sparkplug.edge_node edge-1 (client id = CN = node id), the primary host "analytics" and the host
    "scada", each with its own certificate: the node births once analytics' STATE is online, analytics
    receives its data, a seq gap makes analytics ask for a rebirth (an NCMD) and the node births again,
    SCADA's DCMD becomes a sparkplug.write at the node, and analytics' DCMD is dropped by the broker."""
    wire = Client(broker, pki, ("client", "oee-admin"), "oee-admin-wire")
    clients.append(wire)
    wire.subscribe("spBv1.0/#")
    components = {
        "edge": {"type": "sparkplug.edge_node", "params": {
            "mqtt": mqtt_settings(broker, pki, "edge-1"), "group": GROUP, "node": "edge-1", "client_id": "edge-1",
            "primary_host": "analytics", "metrics": [{"name": "Uptime", "datatype": "Int64", "initial": 0}],
            "devices": {"press": {"metrics": [{"name": "Speed", "datatype": "Double", "initial": 0.0}]}}}},
        "analytics": {"type": "sparkplug.host", "params": {
            "mqtt": mqtt_settings(broker, pki, "oee-analytics"), "host_id": "analytics", "client_id": "oee",
            "groups": [GROUP], "reorder_timeout": 0.5}},
        "scada": {"type": "sparkplug.host", "params": {
            "mqtt": mqtt_settings(broker, pki, "oee-scada"), "host_id": "scada", "client_id": "oee", "groups": [GROUP],
            "commands_topic": "scada/command", "data_topic": "scada/data", "state_topic": "scada/state"}},
    }
    manifest = {"version": 1, "plant": {"name": "oee_security"}, "plugins": ["sparkplug"],
                "transports": {"bus": {"type": "memory"}}, "default_transport": "bus",
                "tactics": {"leader": {"use": "memory", "ttl": 10.0, "renew_every": 1.0, "retry_every": 0.2}},
                "components": components, "runtime": {"health": False}}
    (tmp_path / "plant.yaml").write_text(json.dumps(manifest))

    def births() -> list[bytes]:
        return [body for topic, body, _ in wire.got if topic == spb("NBIRTH", "edge-1")]

    async def body() -> None:
        plugins, loaded = load_plant(tmp_path / "plant.yaml")
        runtime = Runtime(loaded, plugins, serve_health=False, data_dir=tmp_path / ".forge")
        seen: list[Any] = []
        await runtime.start()
        try:
            await runtime.bus.subscribe("#", seen.append, owner="test")
            await until(lambda: births(), 20, "edge-1's NBIRTH")
            await until(lambda: any(e.type == "sparkplug.metrics" and e.topic.startswith("sparkplug/data/")
                                    for e in seen), 10, "analytics' sparkplug.metrics of the birth")
            # A seq gap (admin may publish anything): analytics asks for a rebirth, the node births again.
            wire.publish(spb("NDATA", "edge-1"), encode(int(time.time() * 1000), [], seq=200), qos=0)
            await until(lambda: len(births()) >= 2, 15, "a rebirth after analytics' NCMD")
            assert spb("NCMD", "edge-1") in wire.topics()
            # Commands: SCADA's DCMD is written at the node; analytics' is dropped by the broker.
            command = {"group": GROUP, "node": "edge-1", "device": "press",
                       "metrics": [{"name": "Speed", "value": 1.5, "datatype": "Double"}]}
            await runtime.bus.publish("sparkplug/command/x", "sparkplug.command", command, source="test")
            await asyncio.sleep(1.0)
            assert not [e for e in seen if e.type == "sparkplug.write"], "analytics' DCMD reached the node"
            await runtime.bus.publish("scada/command/x", "sparkplug.command", command, source="test")
            await until(lambda: [e for e in seen if e.type == "sparkplug.write"], 10, "SCADA's write at the node")
            write = next(e for e in seen if e.type == "sparkplug.write")
            assert write.payload["device"] == "press" and write.payload["metrics"][0]["value"] == 1.5
            assert [t for t, _, _ in wire.got].count(spb("DCMD", "edge-1", "press")) == 1  # SCADA's only
            # link_proof under the ACL: the node's UNSUBSCRIBE of a filter it may not read is still answered
            edge = runtime.supervisors["edge"].instance
            await runtime.bus.publish(f"sparkplug/update/{GROUP}/edge-1", "sparkplug.metric_update",
                                      {"metrics": [{"name": "Uptime", "value": 5}]}, source="test")
            await until(lambda: edge.stats["link_proofs"] >= 1 and not edge.unproven, 15, "the DATA proven read")
        finally:
            await runtime.stop()

    asyncio.run(body())
