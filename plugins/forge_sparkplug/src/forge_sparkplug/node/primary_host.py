"""What an edge node does with its primary host's STATE (Sparkplug 3.0 host application, ``primary_host``).

Births wait for the host's STATE online; an older session's STATE is ignored (timestamps); a newer STATE online
while in session is a host that restarted unseen (birth again; what it may have missed goes to the outbox); its
STATE offline ends the node's session. After a lost broker connection, a retained STATE online already believed
may be a crashed broker's stale copy: such a session is unconfirmed, and updates stay stored until the host's
newer STATE or ``unconfirmed_hold`` seconds.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from forge_sparkplug.codec.payload import read_state
from forge_sparkplug.node.replay import store_window

if TYPE_CHECKING:
    from forge_sparkplug.components.edge_node import EdgeNode

__all__ = ["on_state"]

log = logging.getLogger("forge.sparkplug.edge_node")


async def on_state(node: EdgeNode, body: bytes, retained: bool = False) -> None:
    """The primary host's STATE [tck-id-message-flow-edge-node-birth-publish-phid-wait-online/-timestamp]."""
    online, timestamp = read_state(body)
    previous = node.host_timestamp
    if previous is not None and timestamp < previous:
        # an older session's STATE [tck-id-operational-behavior-edge-node-termination-host-offline-timestamp]
        return
    node.host_timestamp = timestamp
    newer = previous is None or timestamp > previous
    if online and node.in_session and newer:
        # the host began a session after our births (it was not there to receive them): birth again, and
        # what an unconfirmed session kept in the outbox follows
        node.stats["host_resumed"] += 1
        log.info("%s: primary host %s has a new session; birth again", node.name, node.params.primary_host)
        node.confirmed = True
        node.in_session = False  # no live DATA ahead of the window
        store_window(node)  # its previous session ended unseen: it may have missed what came before
        node._rebirth()
    elif online:
        node.host_online = True
        if node.client.connected and not node.in_session:
            node.confirmed = not (retained and not newer and node.lost_broker and node.params.unconfirmed_hold > 0)
            if not node.confirmed:
                _hold_until_confirmed(node)
            node._births()
    elif node.host_online or node.in_session:
        node.host_online = False
        log.warning("%s: primary host %s is offline; ending the session", node.name, node.params.primary_host)
        await node._host_offline()
    elif len(node.lookback):  # its Will went out while our own connection was down: found out only now
        store_window(node)


def _hold_until_confirmed(node: EdgeNode) -> None:
    node.stats["unconfirmed_sessions"] += 1
    node._hold += 1
    log.warning(
        "%s: primary host %s's STATE online is the retained one of before the lost connection; keeping "
        "updates stored until its newer STATE online or %gs",
        node.name,
        node.params.primary_host,
        node.params.unconfirmed_hold,
    )
    node.ctx.spawn(_confirm_after(node, node._hold), name="unconfirmed-hold")


async def _confirm_after(node: EdgeNode, hold: int) -> None:
    await node.ctx.clock.sleep(node.params.unconfirmed_hold)
    if hold == node._hold and not node.confirmed:
        node.confirmed = True
        node._start_replay()
