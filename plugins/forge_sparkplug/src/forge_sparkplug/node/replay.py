"""Replay of what an edge node stored while the broker or its primary host was away (store and forward)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from forge_sparkplug.codec.payload import encode
from forge_sparkplug.node.metrics import Entry

if TYPE_CHECKING:
    from forge_sparkplug.components.edge_node import EdgeNode

__all__ = ["replay_stored"]


async def replay_stored(node: EdgeNode) -> None:
    """Send what was stored, in order, as historical DATA; a batch leaves the outbox once a round trip to the
    broker after it proved the broker read it (``link_proof``; 0: each once paho wrote it to the socket)."""
    outbox = node.outbox
    assert outbox is not None
    proof = node.params.link_proof > 0
    while node.in_session and node.confirmed and outbox.depth:
        written: list[int] = []
        failed = False
        for message in outbox.peek(200):
            item = json.loads(message.body)
            device = item["d"]
            entries = [Entry(device, name, e.alias, e.datatype, 0.0, value, stamp, value, True)
                       for name, value, stamp in item["m"]
                       if (e := node.table.entries.get((device, name))) is not None]
            verb = "DDATA" if device else "NDATA"
            topic = node.topic.format(verb=verb) + (f"/{device}" if device else "")
            body = encode(int(node.ctx.clock.time() * 1000), node.table.data(entries, historical=True), node.seq.next(),
                          datatype_of=node.table.datatype_of())
            if not node.in_session or not await node.client.publish_written(topic, body):
                failed = True  # this one and the rest stay stored; the next session replays them
                break
            if not proof:
                outbox.ack(message.seq)
                node.stats["replayed"] += 1
            else:
                written.append(message.seq)
        if proof and written:
            client = node.client
            if not await client.probe(timeout=max(1.0, float(node.broker.keepalive))) or client is not node.client:
                return  # not proven: stays stored (a copy may have arrived; replayed again, historical)
            for seq in written:
                outbox.ack(seq)
            node.stats["replayed"] += len(written)
        if failed:
            return

