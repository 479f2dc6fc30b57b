"""``oee_line.gateway``: the edge gateway's glue, OPC UA data changes -> the edge node's metric updates.

``opcua.source`` publishes one ``opcua.data_change`` per monitored item notification; the tag
``M1/State`` (browsed) or ``M1.State`` (given) names the machine (a Sparkplug device) and the
metric. The PLC's source timestamp becomes the metric's timestamp (ms), so the stored sample says
when the machine did it. Order per tag is the bus's order; the edge node keeps it on the wire.
"""

from __future__ import annotations

from typing import Any

from forge_core import Component, Envelope, Flow, Subscribes
from oee_line.settings import GatewayParams

__all__ = ["Gateway", "split_tag"]


def split_tag(tag: str, separators: str) -> tuple[str, str] | None:
    """``(machine, metric)`` from ``M1/State`` or ``M1.State``; None for a tag with no separator."""
    for sep in separators:
        machine, found, metric = tag.partition(sep)
        if found and machine and metric:
            return machine, metric
    return None


class Gateway(Component):
    Params = GatewayParams
    params: GatewayParams
    subscribes = (Subscribes("opcua.data_change", param="topics"),)

    @classmethod
    def flows(cls, params: GatewayParams) -> list[Flow]:
        """The edge node's updates topic ({group}/{node} filled) besides the declared subscription."""
        updates = params.updates_topic.format(group=params.group, node=params.node)
        return [*super().flows(params), Flow("send", updates, ("sparkplug.metric_update",), origin="updates_topic")]

    async def start(self) -> None:
        p = self.params
        self.updates_topic = p.updates_topic.format(group=p.group, node=p.node)
        self.stats = {"changes": 0, "forwarded": 0, "unmapped": 0}
        for pattern in p.topics:
            await self.ctx.subscribe(pattern, self.on_change, types=["opcua.data_change"])

    async def on_change(self, envelope: Envelope) -> None:
        self.stats["changes"] += 1
        body = envelope.payload
        parts = split_tag(str(body.get("tag", "")), self.params.separators)
        if parts is None or parts[0] == "Diagnostics":
            self.stats["unmapped"] += 1
            return
        machine, metric = parts
        ts = body.get("source_timestamp") or body.get("server_timestamp") or self.ctx.clock.time()
        update: dict[str, Any] = {"name": metric, "value": body.get("value"), "timestamp": round(ts * 1000)}
        await self.ctx.publish(self.updates_topic, "sparkplug.metric_update", {"device": machine, "metrics": [update]},
                               key=machine)
        self.stats["forwarded"] += 1

    def report(self) -> dict[str, Any]:
        return dict(self.stats)
