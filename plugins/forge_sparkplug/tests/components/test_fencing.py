"""Command fencing across host applications on a real Mosquitto: fencing is per host group (the replicas of one
host application share a lease and its epochs); another host application's commands are fenced by its own lease,
never by the primary host's; a command without Forge fencing metadata is accepted or refused by ``require_epoch``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forge_sparkplug.codec import Metric, encode

from .conftest import SparkplugPlant, Wire, broker_params, run_plant, until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]

G = "fencetest"
ANALYTICS, SCADA = "fence-analytics", "fence-scada"


def _host(mosquitto: Any, host_id: str, replicas: int, commands_topic: str) -> dict[str, Any]:
    return {"type": "sparkplug.host", "replicas": replicas, "params": {
        "mqtt": broker_params(mosquitto.host, mosquitto.port), "host_id": host_id, "groups": [G],
        "commands_topic": commands_topic}}


def _edge(mosquitto: Any, node: str, **extra: Any) -> dict[str, Any]:
    return {"type": "sparkplug.edge_node", "params": {
        "mqtt": broker_params(mosquitto.host, mosquitto.port), "group": G, "node": node, "primary_host": ANALYTICS,
        "metrics": [{"name": "Setpoint", "datatype": "Int32", "initial": 0}], **extra}}


def test_each_host_group_is_fenced_by_its_own_lease_and_unfenced_commands_follow_require_epoch(
        tmp_path: Path, mosquitto_server: Any, wire: Wire) -> None:
    """Two replicas of the primary host (analytics) and a SCADA host (another host id, its own lease) command the
    same edge nodes. After a failover of analytics (its epoch rises above SCADA's), SCADA's commands are still
    applied, a command of analytics' deposed epoch is refused, and each host's own older epoch is refused. A plain
    MQTT client's NCMD (no Forge/Epoch, Forge/Lease) is applied by the default edge node and refused by one with
    ``require_epoch``."""

    async def command(plant: SparkplugPlant, prefix: str, node: str, value: int) -> None:
        metric = {"name": "Setpoint", "value": value, "datatype": "Int32"}
        await plant.publish(f"{prefix}/{G}/{node}", "sparkplug.command",
                            {"group": G, "node": node, "metrics": [metric]})

    def writes(plant: SparkplugPlant, node: str) -> list[tuple[int, str | None, int | None]]:
        return [(w["metrics"][0]["value"], w["lease"], w["epoch"]) for w in plant.sent("sparkplug.write")
                if w["node"] == node]

    def ncmd(node: str, value: int, *fencing: Metric) -> None:
        wire.publish(f"spBv1.0/{G}/NCMD/{node}", encode(1, [Metric(name="Setpoint", datatype=3, value=value),
                                                            *fencing]))

    async def scenario(plant: SparkplugPlant) -> None:
        analytics = [plant.component("analytics-0"), plant.component("analytics-1")]
        scada = plant.component("scada")
        first = await until(lambda: next((h for h in analytics if h.primary), None), what="a primary analytics")
        await until(lambda: scada.primary, what="the SCADA host primary of its own group")
        assert first.lease == f"sparkplug-host-{ANALYTICS}" and scada.lease == f"sparkplug-host-{SCADA}"
        await until(lambda: len(wire.on(f"spBv1.0/{G}/NBIRTH/open")) == 1, what="the edge nodes born")
        await command(plant, "analytics/command", "open", 1)
        await until(lambda: writes(plant, "open"), what="analytics' first write")

        # failover of analytics: the survivor's epoch is above the first primary's (and above SCADA's)
        assert plant.runtime is not None
        old_epoch = first.epoch
        await plant.runtime.kill(first.name)
        second = next(h for h in analytics if h is not first)
        await until(lambda: second.primary, what="the other analytics replica elected")
        await until(lambda: len(wire.on(f"spBv1.0/{G}/NBIRTH/open")) >= 2, what="the edge nodes born again")
        assert second.epoch > old_epoch and second.epoch > scada.epoch
        await command(plant, "analytics/command", "open", 2)
        await until(lambda: len(writes(plant, "open")) == 2, what="the new primary's write")

        # SCADA's epoch is lower than analytics' newest, but of another group: applied by both edge nodes
        await command(plant, "scada/command", "open", 3)
        await command(plant, "scada/command", "strict", 3)
        await until(lambda: len(writes(plant, "open")) == 3 and writes(plant, "strict"), what="SCADA's writes")
        assert writes(plant, "open") == [(1, first.lease, old_epoch), (2, first.lease, second.epoch),
                                         (3, scada.lease, scada.epoch)]
        assert writes(plant, "strict") == [(3, scada.lease, scada.epoch)]

        # the deposed analytics primary's epoch, and an older SCADA epoch: refused
        ncmd("open", 4, Metric(name="Forge/Epoch", datatype=4, value=old_epoch),
             Metric(name="Forge/Lease", datatype=12, value=first.lease))
        ncmd("open", 5, Metric(name="Forge/Epoch", datatype=4, value=scada.epoch - 1),
             Metric(name="Forge/Lease", datatype=12, value=scada.lease))
        edge = plant.component("open")
        await until(lambda: edge.stats["stale_commands"] == 2, what="both stale commands refused")

        # no fencing metadata (a third-party host): applied by default, refused with require_epoch
        ncmd("open", 6)
        ncmd("strict", 6)
        strict = plant.component("strict")
        await until(lambda: strict.stats["refused_unfenced"] == 1, what="the strict node refusing it")
        await until(lambda: len(writes(plant, "open")) == 4, what="the open node applying it")
        assert writes(plant, "open")[3] == (6, None, None) and edge.stats["unfenced_commands"] == 1
        # nothing else arrives from what the wire sent: the marker is one more plain NCMD to each node, sent
        # after all of them on the same connection (the broker keeps the order, each node handles its
        # commands one after the other)
        ncmd("open", 7)
        ncmd("strict", 7)
        await until(lambda: len(writes(plant, "open")) == 5 and strict.stats["refused_unfenced"] == 2,
                    what="the marker commands", seen=lambda: (writes(plant, "open"), strict.stats))
        assert [w[0] for w in writes(plant, "open")] == [1, 2, 3, 6, 7]
        assert [w[0] for w in writes(plant, "strict")] == [3]
        assert edge.stats["stale_commands"] == 2 and strict.stats["stale_commands"] == 0

    components = {"analytics": _host(mosquitto_server, ANALYTICS, 2, "analytics/command"),
                  "scada": _host(mosquitto_server, SCADA, 1, "scada/command"),
                  "open": _edge(mosquitto_server, "open"),
                  "strict": _edge(mosquitto_server, "strict", require_epoch=True)}
    run_plant(tmp_path / "plant", mosquitto_server, components, scenario)
    for host_id in (ANALYTICS, SCADA):
        wire.publish(f"spBv1.0/STATE/{host_id}", b"", qos=1, retain=True)
