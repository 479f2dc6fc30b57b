"""``sparkplug.host``: a Sparkplug 3.0 host application; with replicas, a primary one with fencing.

Every replica follows the edge nodes (births, deaths, DATA in seq order with a reorder window); the
one holding the lease (``tactics.leader``) is the primary: its connection carries the STATE Will,
it publishes STATE online, asks for rebirths, sends commands (each NCMD/DCMD carries its lease epoch
and the lease as the ``Forge/Epoch`` and ``Forge/Lease`` metrics, which Forge edge nodes check per
lease) and puts what it hears on the bus as ``sparkplug.metrics`` and ``sparkplug.node_state``. A
deposed replica that is still connected publishes STATE offline (retained, QoS 1, its birth's timestamp),
so edge nodes store and forward until the next primary's STATE online, then disconnects cleanly and
follows as an observer.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

from forge_core import Component, DeadLetter, Envelope, Flow, dead_letters

from forge_sparkplug.codec.datatypes import BY_NUMBER, number_of
from forge_sparkplug.codec.payload import Metric, Payload, PayloadError, decode, encode, read_state, state_body
from forge_sparkplug.codec.topics import NAMESPACE, Topic, TopicError, check_id, parse, state_topic
from forge_sparkplug.host.state import MetricState, NodeState, Pending
from forge_sparkplug.mqtt.client import Received, SparkplugClient, Will
from forge_sparkplug.mqtt.resolve import broker_settings
from forge_sparkplug.settings import HostParams

__all__ = ["Host"]

log = logging.getLogger("forge.sparkplug.host")

REBIRTH, EPOCH, LEASE = "Node Control/Rebirth", "Forge/Epoch", "Forge/Lease"
BOOLEAN, INT64, STRING = 11, 4, 12


class Host(Component):
    """A Sparkplug host application (params: :class:`~forge_sparkplug.settings.HostParams`)."""

    Params = HostParams
    params: HostParams
    publishes = ("sparkplug.metrics", "sparkplug.node_state")

    @classmethod
    def flows(cls, params: HostParams) -> list[Flow]:
        """The bus side, for ``forge asyncapi``: metrics and node states per node (and device) out, commands in,
        the lease's announcements (its spBv1.0 session is its own MQTT client, not a Forge transport)."""
        node = "{group}/{node}"
        out = [Flow("send", f"{prefix}/{node}{device}", (type_,), key="group/node", origin=origin)
               for prefix, type_, origin in ((params.data_topic, "sparkplug.metrics", "data_topic"),
                                             (params.state_topic, "sparkplug.node_state", "state_topic"))
               for device in ("", "/{device}")]
        return [*super().flows(params), *out,
                Flow("receive", f"{params.commands_topic}/#", ("sparkplug.command",), shared=False,
                     origin="commands_topic"),
                Flow("send", "forge/leader/{lease}", ("forge.leadership",), key="lease", origin="lease")]

    async def start(self) -> None:
        p = self.params
        self.broker = broker_settings(self.ctx, p.mqtt)
        self.nodes: dict[tuple[str, str], NodeState] = {}
        self.primary = False
        self.epoch: int | None = None
        self.state_timestamp = 0  # of the Will of the primary connection's CONNECT
        self.stats = dict.fromkeys(("births", "deaths", "stale_deaths", "data", "historical", "seq_gaps",
                                    "reordered", "rebirth_requests", "unknown_metrics", "malformed", "commands_sent",
                                    "commands_ignored", "state_republished", "state_offline", "elections"), 0)
        self._stopping = False
        self._switching = asyncio.Lock()
        self.client = self._new_client()
        self.client.start()
        self.ctx.spawn(self._guard(), name="mqtt-guard")
        # woken when a seq gap opens, asleep until its deadline: a check every reorder_timeout / 4 was a wake-up
        # every 0.5 s of plant time with no gap open nearly always (172,800 a simulated day of the OEE line)
        self._gap_opened = asyncio.Event()
        self.ctx.spawn(self._reorder(), name="reorder")
        self.lease = p.lease or f"sparkplug-host-{p.host_id}"  # the host group: the replicas sharing this lease
        self.elector = self.ctx.elector(self.lease, on_elected=self._elected,
                                        on_deposed=self._deposed)
        await self.ctx.subscribe(f"{p.commands_topic}/#", self.on_command, types=["sparkplug.command"], shared=False)

    def _now(self) -> int:
        return int(self.ctx.clock.time() * 1000)

    def _new_client(self) -> SparkplugClient:
        client_id = (self.params.client_id or f"forge-spb-host-{self.params.host_id}") + f"-{self.name}"
        return SparkplugClient(self.broker, client_id, name=self.name, will=self._will,
                               on_connect=self._connected, on_disconnect=self._disconnected, on_messages=self._received)

    def _will(self) -> Will | None:
        """The primary's Will: STATE offline, retained, QoS 1, stamped with the CONNECT's time
        [tck-id-host-topic-phid-death-payload-timestamp-connect]; an observer's connection has none."""
        if not self.primary:
            return None
        self.state_timestamp = max(self._now(), self.state_timestamp + 1)
        return Will(state_topic(self.params.host_id), state_body(False, self.state_timestamp), 1, True)

    async def _guard(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            if not self._stopping:
                self.client.drop()  # killed: the broker publishes the Will

    # -- leadership ---------------------------------------------------------------------------------------
    async def _elected(self, epoch: int) -> None:
        self.stats["elections"] += 1
        await self._switch(True, epoch)

    async def _deposed(self, epoch: int) -> None:
        if not self._stopping:
            await self._switch(False, epoch)

    async def _switch(self, primary: bool, epoch: int) -> None:
        """A new connection for the new role (the Will is part of CONNECT); the old one ends cleanly,
        without its Will. Deposed, first STATE offline, as on an intentional disconnect [tck-id-host-topic-phid-
        death-payload-disconnect-clean]: without it the edge nodes kept the deposed host for online and sent
        DATA that no primary put on the bus until the next one's STATE online."""
        async with self._switching:
            was_primary = self.primary
            self.primary, self.epoch = primary, epoch if primary else None
            log.info("%s: %s host %s (epoch %d)", self.name, "primary" if primary else "observer of",
                     self.params.host_id, epoch)
            old = self.client
            if was_primary and not primary:
                await self._publish_offline(old)
            await old.stop(will=False)
            if self._stopping:
                return  # stop() ran meanwhile (and stopped the old client): a new one would outlive the component
            self.client = self._new_client()
            self.client.start()

    async def _connected(self) -> None:
        """Subscribe the namespace and the own STATE, then (primary) STATE online with the Will's timestamp
        [tck-id-host-topic-phid-birth-sub-required, tck-id-message-flow-phid-sparkplug-state-publish]."""
        p = self.params
        filters = [(f"{NAMESPACE}/{group}/#", 1) for group in p.groups] or [(f"{NAMESPACE}/#", 1)]
        if p.groups:
            filters.append((state_topic(p.host_id), 1))
        self.client.subscribe(filters)
        if self.primary:
            self.client.publish(state_topic(p.host_id), state_body(True, self.state_timestamp), qos=1, retain=True)
            for node in self.nodes.values():  # what it followed as an observer never reached the bus
                if node.online:
                    self._rebirth(node, "a new primary host")

    async def _disconnected(self) -> None:
        if not self._stopping and not self._switching.locked():
            log.warning("%s: lost MQTT broker %s", self.name, self.client.broker)

    # -- from the broker --------------------------------------------------------------------------------
    async def _received(self, batch: list[Received]) -> None:
        for message in batch:
            try:
                parts = parse(message.topic)
                if parts is None:
                    self._state(message)
                    continue
                payload = decode(message.body, datatype_of=self._node(parts).datatype_of()) \
                    if parts.verb in ("NDATA", "DDATA") else decode(message.body)
                await self._sparkplug(parts, payload)
            except (PayloadError, TopicError) as exc:
                self.stats["malformed"] += 1
                self.ctx.bus.dead_letters.put(DeadLetter(
                    dead_letters.DECODE_ERROR, f"{self.name}: {exc}", message.topic, "sparkplug", self.ctx.clock.time(),
                    component=self.name, body=base64.b64encode(message.body[:4096]).decode()))

    def _state(self, message: Received) -> None:
        """Our own STATE offline while primary: say online again [tck-id-message-flow-hid-sparkplug-state-message-
        delivered]."""
        if message.topic != state_topic(self.params.host_id) or not self.primary or self._stopping:
            return  # stopping: this is the echo of our own STATE offline, which must stay the retained one
        online, _ = read_state(message.body)
        if not online:
            self.stats["state_republished"] += 1
            self.client.publish(message.topic, state_body(True, self.state_timestamp), qos=1, retain=True)

    def _node(self, parts: Topic) -> NodeState:
        key = (parts.group, parts.node)
        node = self.nodes.get(key)
        if node is None:
            node = self.nodes[key] = NodeState(parts.group, parts.node)
        return node

    async def _sparkplug(self, parts: Topic, payload: Payload) -> None:
        node = self._node(parts)
        verb = parts.verb
        if verb == "NBIRTH":
            node.birth(payload, self._now())
            self.stats["births"] += 1
            await self._announce(node, None, "birth")
            await self._metrics(node, None, "birth", payload, [(s, m) for m in payload.metrics
                                                               if (s := node.resolve(None, m)) is not None])
            return
        if verb == "NDEATH":
            bdseq = next((m.value for m in payload.metrics if m.name == "bdSeq"), None)
            # [tck-id-operational-behavior-edge-node-termination-host-action-ndeath-*]
            if node.death(bdseq, self._now()):
                self.stats["deaths"] += 1
                await self._announce(node, None, "death")
                for device in node.devices:
                    await self._announce(node, device, "node death")
            else:
                self.stats["stale_deaths"] += 1
            return
        if verb in ("NCMD", "DCMD"):
            return
        if not node.online or node.last_seq is None or payload.seq is None:
            self._rebirth(node, f"{verb} before NBIRTH")
            return
        expected = (node.last_seq + 1) % 256
        if payload.seq != expected:
            node.pending[payload.seq] = Pending(verb, parts.device, payload)
            if node.gap_deadline is None:  # [tck-id-operational-behavior-host-reordering-start]
                node.gap_deadline = self.ctx.clock.monotonic() + self.params.reorder_timeout
                self._gap_opened.set()
            return
        await self._in_order(node, verb, parts.device, payload)
        while node.pending and (following := node.pending.pop((node.last_seq + 1) % 256, None)) is not None:
            self.stats["reordered"] += 1
            await self._in_order(node, following.verb, following.device, following.payload)
        if not node.pending:
            node.gap_deadline = None  # [tck-id-operational-behavior-host-reordering-success]

    async def _in_order(self, node: NodeState, verb: str, device: str | None, payload: Payload) -> None:
        node.last_seq = payload.seq
        now = self._now()
        if verb == "DBIRTH" and device is not None:
            node.device_birth(device, payload, now)
            await self._announce(node, device, "birth")
            await self._metrics(node, device, "birth", payload, [(s, m) for m in payload.metrics
                                                                 if (s := node.resolve(device, m)) is not None])
        elif verb == "DDEATH" and device is not None:
            # [tck-id-operational-behavior-edge-node-termination-host-action-ddeath-*]
            node.device_death(device, payload.timestamp)
            await self._announce(node, device, "death")
        elif verb in ("NDATA", "DDATA"):
            if device is not None and not node.devices.get(device, None):
                self._rebirth(node, f"DDATA of {device!r} before its DBIRTH")
                return
            known, unknown = node.apply(device, payload)
            if unknown:
                self.stats["unknown_metrics"] += unknown
                self._rebirth(node, f"{unknown} metric(s) not in the birth")
            self.stats["data"] += 1
            historical = [pair for pair in known if pair[1].is_historical]
            self.stats["historical"] += len(historical)
            await self._metrics(node, device, "data", payload, known)

    async def _reorder(self) -> None:
        """Each open gap checked at its deadline (the plant clock's): asleep while none is open."""
        clock = self.ctx.clock
        while True:
            await self._gap_opened.wait()
            self._gap_opened.clear()
            while (due := min((n.gap_deadline for n in self.nodes.values() if n.gap_deadline is not None),
                              default=None)) is not None:
                delay = due - clock.monotonic()
                if delay > 0:  # at least 1 ms: a delay below the clock's float resolution would not move it
                    await clock.sleep(max(delay, 0.001))  # a gap closed meanwhile: the next one's deadline, or none
                else:
                    await self._check_gaps()

    async def _check_gaps(self) -> None:
        """A gap still open after the reorder timeout: take what is held, in order, and ask for a rebirth
        [tck-id-operational-behavior-host-reordering-rebirth]. The plant clock (virtual under --simulate), as for
        every timer of the plant: the reorder window is plant time."""
        now = self.ctx.clock.monotonic()
        for node in list(self.nodes.values()):
            if node.gap_deadline is None or now < node.gap_deadline:
                continue
            self.stats["seq_gaps"] += 1
            held = sorted(node.pending.items(), key=lambda kv: (kv[0] - (node.last_seq or 0)) % 256)
            node.pending.clear()
            node.gap_deadline = None
            for _, pending in held:
                await self._in_order(node, pending.verb, pending.device, pending.payload)
            self._rebirth(node, "seq gap not closed within reorder_timeout")

    # -- to the bus -------------------------------------------------------------------------------------
    async def _announce(self, node: NodeState, device: str | None, reason: str) -> None:
        if not self.primary:
            return
        online = node.online if device is None else node.online and node.devices.get(device, None) is not None \
            and node.devices[device].online
        await self.ctx.publish(self._bus(self.params.state_topic, node, device), "sparkplug.node_state", {
            "host": self.params.host_id, "group": node.group, "node": node.node, "device": device,
            "online": bool(online), "bdSeq": node.bdseq, "timestamp": self._now(), "reason": reason})

    async def _metrics(self, node: NodeState, device: str | None, kind: str, payload: Payload,
                       known: list[tuple[MetricState, Metric]]) -> None:
        if not self.primary or not known:
            return
        await self.ctx.publish(self._bus(self.params.data_topic, node, device), "sparkplug.metrics", {
            "host": self.params.host_id, "group": node.group, "node": node.node, "device": device, "kind": kind,
            "seq": payload.seq, "timestamp": payload.timestamp,
            "metrics": [{"name": state.name, "alias": state.alias, "datatype": BY_NUMBER.get(state.datatype, "Unknown"),
                         "value": metric.value, "timestamp": metric.timestamp, "historical": metric.is_historical,
                         "quality": state.quality if not metric.is_historical else 192} for state, metric in known]})

    @staticmethod
    def _bus(prefix: str, node: NodeState, device: str | None) -> str:
        return f"{prefix}/{node.group}/{node.node}" + (f"/{device}" if device else "")

    # -- commands ---------------------------------------------------------------------------------------
    def _rebirth(self, node: NodeState, reason: str) -> None:
        """NCMD Node Control/Rebirth = true, stamped with the epoch; the primary only, once per reorder_timeout."""
        now = self.ctx.clock.monotonic()
        if not (self.primary and self.params.rebirth_requests) or now - node.last_rebirth_request < \
                self.params.reorder_timeout:
            return
        node.last_rebirth_request = now
        self.stats["rebirth_requests"] += 1
        log.info("%s: asking %s/%s for a rebirth: %s", self.name, node.group, node.node, reason)
        self._send(Topic(node.group, "NCMD", node.node), [Metric(name=REBIRTH, datatype=BOOLEAN, value=True)])

    def _send(self, topic: Topic, metrics: list[Metric]) -> None:
        epoch = self.elector.fence()  # NotLeader when the lease lapsed: nothing is sent
        # the fencing metadata: the epoch is only comparable within its lease, so the lease goes with it
        metrics = [*metrics, Metric(name=EPOCH, datatype=INT64, value=epoch),
                   Metric(name=LEASE, datatype=STRING, value=self.lease)]
        body = encode(self._now(), metrics)  # no seq [tck-id-payloads-ncmd-seq]; QoS 0 [tck-id-payloads-ncmd-qos]
        if self.client.publish(str(topic), body) is None:
            raise RuntimeError(f"{self.name}: not connected to MQTT broker {self.client.broker}; {topic} not sent")
        self.stats["commands_sent"] += 1

    async def on_command(self, envelope: Envelope) -> None:
        """A ``sparkplug.command`` from a component -> NCMD/DCMD (the primary only; the others ignore it)."""
        if not self.primary:
            self.stats["commands_ignored"] += 1
            return
        body = envelope.payload
        group, node_id, device = body["group"], body["node"], body.get("device")
        check_id("group", group), check_id("node", node_id)
        node = self.nodes.get((group, node_id))
        metrics = []
        for item in body["metrics"]:
            known = node.resolve(device, Metric(name=item["name"])) if node is not None else None
            datatype = number_of(item["datatype"]) if item.get("datatype") is not None else \
                (known.datatype if known is not None else None)
            if datatype is None:
                raise ValueError(f"{self.name}: command to {group}/{node_id}{'/' + device if device else ''}: metric "
                                 f"{item['name']!r} is not in its birth; give its datatype")
            if known is not None and known.alias is not None:  # by alias [tck-id-payloads-alias-data-cmd-requirement]
                metrics.append(Metric(alias=known.alias, datatype=datatype, value=item["value"]))
            else:
                metrics.append(Metric(name=item["name"], datatype=datatype, value=item["value"]))
        self._send(Topic(group, "DCMD" if device else "NCMD", node_id, device), metrics)

    # -- stop -------------------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Primary: STATE offline before a clean DISCONNECT [tck-id-host-topic-phid-death-payload-disconnect-
        clean]."""
        self._stopping = True
        client = getattr(self, "client", None)
        if client is None:
            return
        if self.primary:
            await self._publish_offline(client)
        await client.stop(will=False)

    async def _publish_offline(self, client: SparkplugClient) -> None:
        """STATE offline, retained, QoS 1 (waits for the PUBACK), with the timestamp of the birth and the Will: an
        edge node ends its session on an offline STATE at least as new as the online one it believes, and ignores
        an older one [tck-id-operational-behavior-edge-node-termination-host-offline-timestamp]. So if this comes
        after the next primary's STATE online (a later timestamp), nodes already in its session keep it; the next
        primary answers the offline STATE on its topic with its online one again (``_state``), so the retained
        STATE a node connecting later reads is right. Not connected: the broker sends the Will (same body)."""
        if not client.connected or not self.state_timestamp:
            return
        topic = state_topic(self.params.host_id)
        if not await client.publish_written(topic, state_body(False, self.state_timestamp), qos=1, retain=True):
            log.warning("%s: STATE offline of host %s not acknowledged by %s; the broker sends the Will when the "
                        "connection is closed", self.name, self.params.host_id, client.broker)
        self.stats["state_offline"] += 1

    def health(self) -> dict[str, Any]:
        return {"primary": self.primary, "epoch": self.epoch, "connected": self.client.connected,
                "nodes": {f"{g}/{n}": s.online for (g, n), s in self.nodes.items()}, **self.stats}

    def report(self) -> dict[str, Any]:
        return self.health()

    def node_state(self, group: str, node: str) -> dict[str, Any] | None:
        """Everything known of one edge node: online, bdSeq, metrics (last value, quality), devices."""
        state = self.nodes.get((group, node))
        return state.snapshot() if state is not None else None
