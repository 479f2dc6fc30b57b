"""``sparkplug.edge_node``: a Sparkplug B 3.0 Edge Node and its devices.

Metrics come from ``sparkplug.metric_update`` messages on the bus; the node reports them by exception
(deadbands) as NDATA/DDATA after its NBIRTH/DBIRTHs, honours ``Node Control/Rebirth``, turns NCMD/DCMD
writes into ``sparkplug.write`` messages, and fences commands per host group: a command whose
``Forge/Epoch`` is older than the newest seen with its ``Forge/Lease`` is a deposed Forge host's and is
refused. With a primary host it births only after that host's STATE online, and ends its session when
the host goes offline. Updates made while the broker or the primary host is away wait in the outbox
tactic and are replayed, in order, with ``is_historical``; so do those sent as QoS 0 DATA into a connection
that broke before a round trip to the broker proved it had read them (``link_proof``), and those the broker read
in the last ``host_lookback`` seconds before the primary host's STATE offline (a host that died silently).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from forge_core import Component, Envelope, Flow
from forge_core.tactics import FencedReceiver, Outbox

from forge_sparkplug.codec.payload import Metric, PayloadError, encode
from forge_sparkplug.codec.topics import NAMESPACE, TopicError, state_topic
from forge_sparkplug.mqtt.client import Received, SparkplugClient, Will
from forge_sparkplug.mqtt.resolve import broker_settings, data_dir
from forge_sparkplug.node.commands import REBIRTH, on_command
from forge_sparkplug.node.data_body import data_body
from forge_sparkplug.node.link_proof import LinkProof
from forge_sparkplug.node.lookback import Lookback
from forge_sparkplug.node.metrics import Entry, MetricTable
from forge_sparkplug.node.primary_host import on_state
from forge_sparkplug.node.replay import replay_stored, store_window
from forge_sparkplug.node.session import BdSeq, Seq
from forge_sparkplug.node.stored import stored_body
from forge_sparkplug.settings import EdgeNodeParams

__all__ = ["EdgeNode"]

log = logging.getLogger("forge.sparkplug.edge_node")

INT64, BOOLEAN = 4, 11


class EdgeNode(Component):
    """One Sparkplug Edge Node (params: :class:`~forge_sparkplug.settings.EdgeNodeParams`)."""

    Params = EdgeNodeParams
    params: EdgeNodeParams
    publishes = ("sparkplug.write",)

    @classmethod
    def flows(cls, params: EdgeNodeParams) -> list[Flow]:
        """The bus side, for ``forge asyncapi``: updates in, NCMD/DCMD writes out (its Sparkplug session on
        the broker is its own MQTT client, spBv1.0 protobuf, not a Forge transport)."""
        updates = params.updates_topic.format(group=params.group, node=params.node)
        writes = params.writes_topic.format(group=params.group, node=params.node)
        return [
            *super().flows(params),
            Flow("receive", updates, ("sparkplug.metric_update",), origin="updates_topic"),
            Flow("send", writes, ("sparkplug.write",), origin="writes_topic (NCMD)"),
            Flow("send", writes + "/{device}", ("sparkplug.write",), origin="writes_topic (DCMD)"),
        ]

    async def start(self) -> None:
        p = self.params
        self.topic = f"{NAMESPACE}/{p.group}/{{verb}}/{p.node}"
        self.broker = broker_settings(self.ctx, p.mqtt)
        self.table = MetricTable(p.metrics, p.devices, aliases=p.aliases, now_ms=self._now())
        self.seq = Seq()
        self.bdseq = BdSeq(data_dir(self.ctx) / f"sparkplug-{p.group}-{p.node}.bdseq")
        self.connect_bdseq = -1  # bdSeq of the Will of the latest CONNECT
        self.in_session = False
        self.host_online = p.primary_host is None
        self.host_timestamp: int | None = None  # of the newest STATE believed
        # After a lost broker connection, a retained STATE online we already believed may be a crashed broker's
        # stale copy (the host not back yet): DATA sent then would reach nobody. Such a session is unconfirmed and
        # keeps updates in the outbox until the host's newer STATE or params.unconfirmed_hold.
        self.lost_broker = False
        self.confirmed = True
        self._hold = 0  # generation of the latest unconfirmed hold (its timer confirms only its own)
        # newest epoch per host group (the lease its replicas share): hosts of other groups (a SCADA host beside
        # the primary analytics host) have epochs of their own, which never fence each other
        self.fence = FencedReceiver()
        self.outbox: Outbox | None = (
            self.ctx.tactics.outbox(f"sparkplug-{p.group}-{p.node}", max_bytes=p.outbox_max_bytes)
            if p.store_and_forward
            else None
        )
        self.stats = dict.fromkeys(
            (
                "births",
                "rebirths",
                "data_sent",
                "unchanged",
                "stored",
                "replayed",
                "commands",
                "stale_commands",
                "unfenced_commands",
                "refused_unfenced",
                "bad_commands",
                "unconfirmed_sessions",
                "host_resumed",
                "host_offline",
                "link_proofs",
                "unproven_stored",
                "lookback_stored",
                "lookback_refused",
            ),
            0,
        )
        self._stopping = False
        self._replay: asyncio.Task[None] | None = None
        self.client = self._new_client()
        # live DATA written since the last proof of the connection (QoS 0: a dead link not yet noticed eats it)
        self.link = LinkProof(self.ctx, p.link_proof, lambda: self.client, float(self.broker.keepalive), self.stats)
        # DATA the broker read, kept for the primary host's last moments (its Will: 1.5 x keepalive after it hung)
        self.lookback = Lookback(p.lookback_window, p.host_lookback_max_messages, p.host_lookback_max_bytes)
        self.client.start()
        self.ctx.spawn(self._guard(), name="mqtt-guard")
        updates = p.updates_topic.format(group=p.group, node=p.node)
        await self.ctx.subscribe(updates, self.on_update, types=["sparkplug.metric_update"])

    def _now(self) -> int:
        return int(self.ctx.clock.time() * 1000)

    def _new_client(self) -> SparkplugClient:
        p = self.params
        return SparkplugClient(
            self.broker,
            p.client_id or f"forge-spb-{p.group}-{p.node}",
            name=self.name,
            will=self._will,
            on_connect=self._connected,
            on_disconnect=self._disconnected,
            on_messages=self._received,
        )

    def _will(self) -> Will:
        """NDEATH as the Will of every CONNECT, with a new bdSeq [tck-id-payloads-ndeath-will-message,
        tck-id-payloads-ndeath-will-message-qos (1), tck-id-payloads-ndeath-will-message-retain (false)]."""
        self.connect_bdseq = self.bdseq.next_connect()
        return Will(self.topic.format(verb="NDEATH"), self._ndeath_body(), 1, False)

    def _ndeath_body(self) -> bytes:
        # only the bdSeq metric, no seq [tck-id-topics-ndeath-payload, tck-id-topics-ndeath-seq]
        return encode(self._now(), [Metric(name="bdSeq", datatype=INT64, value=self.connect_bdseq)])

    async def _guard(self) -> None:
        """Dies with the component: killed without stop() (SIGKILL in tests), the socket just closes."""
        try:
            await asyncio.Event().wait()
        finally:
            if not self._stopping:
                self.client.drop()

    # -- session ----------------------------------------------------------------------------------------
    async def _connected(self) -> None:
        p = self.params
        filters = [(self.topic.format(verb="NCMD"), 1), (self.topic.format(verb="DCMD") + "/+", 1)]
        if p.primary_host is not None:
            self.host_online = False  # believed again only from a STATE heard in this session
            filters.append((state_topic(p.primary_host), 1))
        else:
            self.confirmed = True
        self.client.subscribe(filters)  # [tck-id-message-flow-edge-node-ncmd-subscribe, ...-device-dcmd-subscribe]
        if self.host_online:
            self._births()

    async def _disconnected(self) -> None:
        if self.in_session and not self._stopping:
            log.warning(
                "%s: lost MQTT broker %s; storing updates until the next session", self.name, self.client.broker
            )
            self.lost_broker = True
        self.in_session = False
        self._store_unproven()

    def _births(self) -> None:
        """NBIRTH (seq 0, bdSeq of the CONNECT, Node Control/Rebirth false, every metric), then a
        DBIRTH per device online, then the stored updates [tck-id-payloads-dbirth-order]."""
        now = self._now()
        control = [
            Metric(name="bdSeq", datatype=INT64, value=self.connect_bdseq, timestamp=now),
            Metric(name=REBIRTH, datatype=BOOLEAN, value=False, timestamp=now),
        ]
        body = encode(now, control + self.table.birth(None), self.seq.birth())
        if self.client.publish(self.topic.format(verb="NBIRTH"), body) is None:
            return
        for device, online in self.table.device_online.items():
            if online and not self._dbirth(device):
                return
        self.in_session = True
        self.stats["births"] += 1
        self._start_replay()

    def _dbirth(self, device: str) -> bool:
        body = encode(self._now(), self.table.birth(device), self.seq.next())
        return self.client.publish(f"{self.topic.format(verb='DBIRTH')}/{device}", body) is not None

    async def _host_offline(self) -> None:
        """The primary host went offline: NDEATH, disconnect, start over [tck-id-message-flow-edge-node-birth-
        publish-phid-offline]; until its STATE online, updates are stored."""
        self.stats["host_offline"] += 1
        self.in_session = False
        store_window(self)  # the host may have gone before it got them
        self.lost_broker = False  # the host's next STATE online is a new session of the host
        old = self.client
        if not self.broker.is_v5:
            await old.publish_written(self.topic.format(verb="NDEATH"), self._ndeath_body(), qos=1)
        await old.stop(will=True)
        if self._stopping:
            return  # stop() ran meanwhile (and stopped the old client): a new one would outlive the component
        self.client = self._new_client()
        self.client.start()

    # -- updates from the bus ---------------------------------------------------------------------------
    async def on_update(self, envelope: Envelope) -> None:
        payload = envelope.payload
        device = payload.get("device")
        online = payload.get("online")
        if device is not None and online is not None:
            await self._device_online(device, bool(online))
        changed = self.table.apply(device, payload.get("metrics", []), self._now())
        if not changed:
            self.stats["unchanged"] += 1
            return
        if device is not None and not self.table.device_online.get(device, True):
            return  # an offline device's values: they go out with its next DBIRTH
        if self.in_session and not self._backlog() and self._send(device, changed, historical=False):
            self._unproven(device, changed)
            return
        self._store(device, changed)

    async def _device_online(self, device: str, online: bool) -> None:
        if device not in self.table.device_online:
            self.table.apply(device, [], self._now())  # raises UnknownMetric naming the device
        was = self.table.device_online[device]
        self.table.device_online[device] = online
        if was == online or not self.in_session:
            return
        if online:
            self._dbirth(device)
        else:  # [tck-id-operational-behavior-device-ddeath]
            body = encode(self._now(), [], self.seq.next())
            self.client.publish(f"{self.topic.format(verb='DDEATH')}/{device}", body)

    def _backlog(self) -> bool:
        return self.outbox is not None and (self.outbox.depth > 0 or not self.confirmed)

    def _send(self, device: str | None, entries: list[Entry], *, historical: bool) -> bool:
        verb = "DDATA" if device else "NDATA"
        topic = self.topic.format(verb=verb) + (f"/{device}" if device else "")
        body = data_body(self._now(), entries, self.seq.next(), historical=historical)  # encode's bytes
        if self.client.publish(topic, body) is None:
            return False
        self.stats["data_sent"] += 1
        return True

    def _store(self, device: str | None, entries: list[Entry]) -> None:
        if self.outbox is None:
            return  # the values are in the table; the next birth carries them
        self._store_unproven()  # older than this update: first, so the replay keeps the order
        self._put(self._body(device, entries))
        self.stats["stored"] += 1
        if self.in_session:
            self._start_replay()

    @staticmethod
    def _body(device: str | None, entries: list[Entry]) -> bytes:
        return stored_body(device, entries)  # json.dumps's bytes (node.stored)

    def _put(self, body: bytes) -> None:
        assert self.outbox is not None
        self.outbox.put(f"{self.params.group}/{self.params.node}", body)  # OutboxFull: dead-lettered

    # -- proof of the connection (QoS 0 DATA on a dead link) --------------------------------------------
    @property
    def unproven(self) -> list[bytes]:
        """Live DATA not yet proven read by the broker (:class:`~forge_sparkplug.node.link_proof.LinkProof`)."""
        return self.link.pending

    def _unproven(self, device: str | None, entries: list[Entry]) -> None:
        if self.outbox is None or not (self.params.link_proof > 0 or self.lookback.enabled):
            return
        body = self._body(device, entries)
        if self.params.link_proof > 0:
            self.link.hold(body)
        self.lookback.record(body, self.ctx.clock.time())

    def _store_unproven(self) -> None:
        """What was sent live but not proven read by the broker: into the outbox, in order, ahead of anything newer."""
        pending = self.link.take()
        self.lookback.forget(pending)  # replayed from the outbox, and recorded again once proven
        if self.outbox is None:
            return
        for body in pending:
            self._put(body)
            self.stats["unproven_stored"] += 1

    def _start_replay(self) -> None:
        if self.confirmed and self._backlog() and (self._replay is None or self._replay.done()):
            self._replay = self.ctx.spawn(replay_stored(self), name="replay")

    # -- from the broker --------------------------------------------------------------------------------
    async def _received(self, batch: list[Received]) -> None:
        for message in batch:
            try:
                if message.topic.startswith(f"{NAMESPACE}/STATE/"):
                    await on_state(self, message.body, message.retain)
                else:
                    await on_command(self, message.topic, message.body)
            except (PayloadError, TopicError) as exc:
                self.stats["bad_commands"] += 1
                log.warning("%s: ignored %s: %s", self.name, message.topic, exc)

    def _rebirth(self) -> None:
        """Stop DATA, send NBIRTH (same bdSeq, seq 0) and the DBIRTHs [tck-id-operational-behavior-data-commands-
        rebirth-action-1/2/3]."""
        self.stats["rebirths"] += 1
        self.in_session = False
        if self.client.connected and self.host_online:
            self._births()

    # -- stop -------------------------------------------------------------------------------------------
    async def stop(self) -> None:
        """An intentional disconnect: NDEATH first on 3.1.1; on 5 the DISCONNECT asks the broker for the Will
        [tck-id-operational-behavior-edge-node-intentional-disconnect-ndeath]."""
        self._stopping = True
        client = getattr(self, "client", None)
        if client is None:
            return
        await self.link.prove_now(timeout=2.0)  # what the broker read needs no copy
        if client.connected and not self.broker.is_v5:
            await client.publish_written(self.topic.format(verb="NDEATH"), self._ndeath_body(), qos=1)
        await client.stop(will=True)
        if self.outbox is not None:
            self._store_unproven()  # replayed after the next start
            self.outbox.close()

    def health(self) -> dict[str, Any]:
        return {
            "in_session": self.in_session,
            "connected": self.client.connected,
            "bdSeq": self.connect_bdseq,
            "host_online": self.host_online,
            "outbox_depth": self.outbox.depth if self.outbox else 0,
            "lookback_dropped": self.lookback.dropped,
            **self.stats,
        }

    def report(self) -> dict[str, Any]:
        return self.health()
