"""Replay of what an edge node stored while the broker or its primary host was away (store and forward)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from forge_core.tactics import OutboxFull

from forge_sparkplug.node.data_body import data_body
from forge_sparkplug.node.metrics import Entry

if TYPE_CHECKING:
    from forge_sparkplug.components.edge_node import EdgeNode

__all__ = ["replay_stored", "store_window"]

log = logging.getLogger("forge.sparkplug.edge_node")


#: outbox rows sent per page: one read, one wait for paho's socket, one delete transaction each
PAGE = 500


async def replay_stored(node: EdgeNode) -> None:
    """Send what was stored, in order, as historical DATA, a page at a time: every row of the page handed to paho
    (which writes them to the socket in that order), then one wait until it wrote the page's last, then the page
    leaves the outbox in one transaction -- once a round trip to the broker after it proved the broker read it
    (``link_proof``; 0: once paho wrote it). Waiting for each row in turn and deleting each in a transaction of its
    own (an fsync each) held the replay to a few hundred rows a second. A process that dies mid-page leaves the
    whole page stored: it is sent again, historical (at least once, as before, never lost)."""
    outbox = node.outbox
    assert outbox is not None
    proof = node.params.link_proof > 0
    while node.in_session and node.confirmed and outbox.depth:
        client = node.client
        page = outbox.peek(PAGE)
        handed = 0
        for index, message in enumerate(page):
            if not node.in_session or client is not node.client:
                break
            topic, body = _historical(node, message.body)
            if index < len(page) - 1:
                if client.publish(topic, body) is None:
                    break
            elif not await client.publish_written(topic, body):
                break
            handed += 1
        if handed < len(page):
            return  # the page not all written: it stays stored, and the next session replays it (historical)
        if proof and (
            not await client.probe(timeout=max(1.0, float(node.broker.keepalive))) or client is not node.client
        ):
            return  # not proven: stays stored (a copy may have arrived; replayed again, historical)
        outbox.ack_many([message.seq for message in page])
        now = node.ctx.clock.time()
        for message in page:
            node.lookback.record(message.body, now)  # the host may die before it reads it
        node.stats["replayed"] += len(page)


def _historical(node: EdgeNode, stored: bytes) -> tuple[str, bytes]:
    """The DATA topic and historical payload (next seq) of one outbox row."""
    item = json.loads(stored)
    device = item["d"]
    entries = [
        Entry(device, name, e.alias, e.datatype, 0.0, value, stamp, value, True)
        for name, value, stamp in item["m"]
        if (e := node.table.entries.get((device, name))) is not None
    ]
    topic = node.topic.format(verb="DDATA" if device else "NDATA") + (f"/{device}" if device else "")
    return topic, data_body(int(node.ctx.clock.time() * 1000), entries, node.seq.next(), historical=True)


def store_window(node: EdgeNode) -> None:
    """The primary host's session ended (its STATE offline, or a newer STATE online while in session): what it
    may not have got goes to the outbox, oldest first and ahead of what is stored already (newer): the DATA of
    the last ``host_lookback`` seconds the broker read, then what it has not been proven to have read."""
    moved = node.lookback.take(node.ctx.clock.time())
    unproven = node.link.take()
    outbox = node.outbox
    if outbox is None:
        return
    held = {id(body) for body in unproven}  # sent live and not proven: recorded in both, stored once
    window = [body for body in moved.bodies if id(body) not in held]
    if moved.dropped:
        log.warning(
            "%s: %d DATA sent in the primary host's last %gs were dropped for the bound of host_lookback "
            "(host_lookback_max_messages/_bytes) and are not replayed",
            node.name,
            moved.dropped,
            node.lookback.window,
        )
    older = outbox.depth
    topic = f"{node.params.group}/{node.params.node}"
    try:
        for body in window:
            outbox.put(topic, body)
            node.stats["lookback_stored"] += 1
        for body in unproven:
            outbox.put(topic, body)
            node.stats["unproven_stored"] += 1
        if window and older:
            # what the outbox held is newer than the window (nothing goes out live while it holds anything): behind it,
            # each copied before it is removed (a crash meanwhile leaves a copy twice, historical, never none)
            while older > 0:
                batch = outbox.peek(min(older, 200))
                if not batch:
                    break
                for message in batch:
                    outbox.put(message.topic, message.body, message.headers)
                    outbox.ack(message.seq)
                older -= len(batch)
    except OutboxFull as exc:
        node.stats["lookback_refused"] += 1
        log.error("%s: the outbox is full: DATA of the primary host's last moments not stored: %s", node.name, exc)
