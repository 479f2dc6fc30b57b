"""An edge node's commands from its hosts (NCMD/DCMD): fencing per host group, rebirth, writes to the bus.

A Forge host's command carries its lease epoch and lease (``Forge/Epoch``, ``Forge/Lease``): one whose epoch is
older than the newest seen with its lease is a deposed replica's and is refused. A command without them is
not a Forge host's: taken unfenced, or refused with ``require_epoch``. The node's state machine (births,
sessions) stays in :mod:`forge_sparkplug.components.edge_node`; this is what one command does to it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from forge_sparkplug.codec.payload import decode
from forge_sparkplug.codec.topics import parse

if TYPE_CHECKING:
    from forge_sparkplug.components.edge_node import EdgeNode

__all__ = ["EPOCH", "LEASE", "REBIRTH", "on_command"]

log = logging.getLogger("forge.sparkplug.edge_node")

REBIRTH = "Node Control/Rebirth"
EPOCH, LEASE = "Forge/Epoch", "Forge/Lease"


async def on_command(node: EdgeNode, topic: str, body: bytes) -> None:
    """An NCMD/DCMD: fenced per host group, ``Node Control/Rebirth`` honoured, the rest as one ``sparkplug.write``."""
    parts = parse(topic)
    if parts is None or parts.verb not in ("NCMD", "DCMD"):
        return
    payload = decode(body, datatype_of=node.table.datatype_of())
    epoch = next((m.value for m in payload.metrics if m.name == EPOCH and isinstance(m.value, int)), None)
    lease = next((m.value for m in payload.metrics if m.name == LEASE and isinstance(m.value, str)), None)
    if epoch is None or lease is None:  # not a Forge host's command (or incomplete metadata): not fenced
        if node.params.require_epoch:
            node.stats["refused_unfenced"] += 1
            log.warning("%s: refused %s without %s and %s (require_epoch)", node.name, topic, EPOCH, LEASE)
            return
        node.stats["unfenced_commands"] += 1
        epoch = lease = None
    elif not node.fence.accept(epoch, lease):
        node.stats["stale_commands"] += 1
        log.warning(
            "%s: refused %s with stale epoch %d of host group %r (newest %s): a deposed host's command",
            node.name,
            topic,
            epoch,
            lease,
            node.fence.newest.get(lease),
        )
        return
    node.stats["commands"] += 1
    if parts.verb == "NCMD" and any(m.name == REBIRTH and m.value is True for m in payload.metrics):
        node._rebirth()
    writes = []
    for metric in payload.metrics:
        entry = (
            node.table.by_alias.get(metric.alias)
            if metric.alias is not None
            else node.table.entries.get((parts.device, metric.name or ""))
        )
        name = entry.name if entry is not None else metric.name
        if name in (EPOCH, LEASE, REBIRTH) or name is None:
            continue
        writes.append(
            {"name": name, "value": metric.value, "datatype": entry.datatype if entry is not None else metric.datatype}
        )
    if writes:
        topic_out = node.params.writes_topic.format(group=node.params.group, node=node.params.node)
        await node.ctx.publish(
            topic_out + (f"/{parts.device}" if parts.device else ""),
            "sparkplug.write",
            {
                "group": node.params.group,
                "node": node.params.node,
                "device": parts.device,
                "metrics": writes,
                "epoch": epoch,
                "lease": lease,
            },
        )
