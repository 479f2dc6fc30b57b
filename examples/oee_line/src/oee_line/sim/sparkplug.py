"""``oee_line.sim_edge_node`` and ``oee_line.sim_host``: forge_sparkplug's edge node and host on a simulated broker.

Everything of ``sparkplug.edge_node`` / ``sparkplug.host`` runs unchanged (births, seq, bdSeq, the
STATE wait, store-and-forward through the outbox tactic, reordering, rebirth requests); only the
MQTT client is :class:`oee_line.sim.broker.SimClient` instead of paho, so they run under virtual time.
Params: sparkplug's, plus ``broker`` and ``persistence`` (:class:`oee_line.settings.SimSparkplugParams`).
"""

from __future__ import annotations

from forge_sparkplug import EdgeNode, EdgeNodeParams, Host, HostParams

from oee_line.settings import SimSparkplugParams
from oee_line.sim.broker import SimClient, broker

__all__ = ["SimEdgeNode", "SimEdgeNodeParams", "SimHost", "SimHostParams"]


class SimEdgeNodeParams(EdgeNodeParams, SimSparkplugParams):
    """``sparkplug.edge_node``'s params and the simulated broker's."""


class SimHostParams(HostParams, SimSparkplugParams):
    """``sparkplug.host``'s params and the simulated broker's."""


class SimEdgeNode(EdgeNode):
    Params = SimEdgeNodeParams
    params: SimEdgeNodeParams

    async def start(self) -> None:
        await super().start()
        self.bdseq.fsync = False  # virtual time: as the plant's databases, no fsync (~9 ms of wall a CONNECT)
        if self.outbox is not None:  # what a previous simulated run left is from another timeline
            while batch := self.outbox.peek(500):
                for message in batch:
                    self.outbox.ack(message.seq)

    def _new_client(self) -> SimClient:
        p = self.params
        return SimClient(broker(p.broker, persistence=p.persistence), self.broker,
                         p.client_id or f"forge-spb-{p.group}-{p.node}", name=self.name, will=self._will,
                         on_connect=self._connected, on_disconnect=self._disconnected, on_messages=self._received)


class SimHost(Host):
    Params = SimHostParams
    params: SimHostParams

    def _new_client(self) -> SimClient:
        p = self.params
        client_id = (p.client_id or f"forge-spb-host-{p.host_id}") + f"-{self.name}"
        return SimClient(broker(p.broker, persistence=p.persistence), self.broker, client_id, name=self.name,
                         will=self._will, on_connect=self._connected, on_disconnect=self._disconnected,
                         on_messages=self._received)
