"""One connection of a source: connect, resolve the tags, one subscription with one monitored item per
tag, change their sampling interval in place, notice the loss, close.

A lost connection is never repaired in place: the source closes this session and opens a new one
(a new asyncua ``Client``), which resolves the nodes again and creates exactly one subscription.
After a server restart the server has forgotten the old session anyway; after a network break it
still holds it, and the new session takes its subscription over and deletes it (the rest of the
old session lapses after ``session_timeout``). Loss is what asyncua's connection supervisor
reports (``connection_lost_callback``: the socket closed, or the watchdog's read of the server
state failed) or a bad status change of the subscription (BadTimeout: the server dropped it).
A socket that connected to itself is closed at once and the connect fails (see ``self_connect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeNotif, Subscription

from forge_opcua.client.convert import Tag
from forge_opcua.client.nodes import NodeError, resolve_tags
from forge_opcua.client.self_connect import GuardedClient
from forge_opcua.security import CertificateTrust, configure_client
from forge_opcua.settings import SourceParams

__all__ = ["OnDataChange", "Session"]

log = logging.getLogger("forge.opcua.source")

#: Called for every notification, on the loop, in the order the server sent them.
OnDataChange = Callable[[Tag, ua.DataValue], None]


class _Handler:
    """asyncua's subscription handler: routes notifications by client handle; watches status changes."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def datachange_notification(self, node: Any, value: Any, data: DataChangeNotif) -> None:
        item = data.monitored_item
        tag = self.session.tags_by_handle.get(item.ClientHandle)
        if tag is not None:
            self.session.on_change(tag, item.Value)

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        if not status.Status.is_good():
            self.session.mark_lost(f"subscription status {status.Status.name}")


class Session:
    def __init__(self, params: SourceParams, who: str, on_change: OnDataChange) -> None:
        self.params = params
        self.who = who
        self.on_change = on_change
        self.client: Client | None = None
        self.subscription: Subscription | None = None
        self.tags: list[Tag] = []
        self.tags_by_handle: dict[int, Tag] = {}
        self.item_ids: dict[int, int] = {}  # client handle -> the server's monitored item id
        self.revised_sampling: dict[int, float] = {}  # client handle -> the server's revised interval, ms
        self.sampling_interval = 0.0
        self.trust: CertificateTrust | None = None
        self.reclaimed: int | None = None  # the previous session's subscription, taken over and deleted
        self.lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @property
    def subscription_id(self) -> int | None:
        return None if self.subscription is None else self.subscription.subscription_id

    def mark_lost(self, reason: str) -> None:
        if not self.lost.done():
            self.lost.set_result(reason)

    async def _connection_lost(self, exc: Exception) -> None:
        self.mark_lost(f"connection lost: {exc!r}")

    async def open(self, sampling_interval: float, previous_subscription: int | None = None) -> None:
        """Connect and subscribe; raises NodeError for a bad node, asyncua's errors otherwise.
        ``previous_subscription``: the one the last session left on the server (see :meth:`_reclaim`)."""
        p = self.params
        client = self.client = GuardedClient(p.endpoint, timeout=p.request_timeout,
                                             watchdog_intervall=p.watchdog_interval)
        client.who = self.who
        client.session_timeout = int(p.session_timeout * 1000)
        client.name = client.description = f"Forge {self.who}"
        client.connection_lost_callback = self._connection_lost
        self.trust = await configure_client(client, p.security, who=self.who)
        await client.connect()
        self.tags = await resolve_tags(client, p.node_specs(), p.browse)
        self.tags_by_handle = {tag.handle: tag for tag in self.tags}
        if previous_subscription is not None:
            await self._reclaim(client, previous_subscription)
        self.subscription = await client.create_subscription(p.publishing_interval * 1000, _Handler(self))
        await self._monitor(sampling_interval)

    async def _reclaim(self, client: Client, subscription_id: int) -> None:
        """After a network break the server keeps the old session and its subscription for
        session_timeout (Part 4, 6.7), still sampling; take it over (TransferSubscriptions) and
        delete it, so the server holds this session's subscription only. After a server restart
        there is nothing to take over, and the refusal is expected."""
        try:
            results = await client.uaclient.session.transfer_subscriptions(ua.TransferSubscriptionsParameters(
                SubscriptionIds=[subscription_id], SendInitialValues=False))
            if results and results[0].StatusCode.is_good():
                await client.delete_subscriptions([subscription_id])
                self.reclaimed = subscription_id
                log.info("%s: deleted subscription %d left by the previous session", self.who, subscription_id)
        except Exception as exc:  # gone with a restarted server, or the server does not transfer
            log.debug("%s: subscription %d not taken over: %r", self.who, subscription_id, exc)

    async def _monitor(self, sampling_interval: float) -> None:
        assert self.subscription is not None
        requests = []
        for tag in self.tags:
            item = ua.MonitoredItemCreateRequest()
            item.ItemToMonitor = ua.ReadValueId(NodeId=tag.node_id, AttributeId=ua.AttributeIds.Value)
            item.MonitoringMode = ua.MonitoringMode.Reporting
            item.RequestedParameters = self._parameters(tag, sampling_interval)
            requests.append(item)
        results = await self.subscription.create_monitored_items(requests)
        failed = [(tag, result) for tag, result in zip(self.tags, results, strict=True)
                  if isinstance(result, ua.StatusCode)]
        if failed:
            raise NodeError("; ".join(f"node {tag.node_text!r} ({tag.name}) cannot be monitored: {code.name}"
                                      for tag, code in failed))
        self.item_ids = {tag.handle: int(result) for tag, result in zip(self.tags, results, strict=True)
                         if not isinstance(result, ua.StatusCode)}
        self.sampling_interval = sampling_interval

    def _parameters(self, tag: Tag, sampling_interval: float) -> ua.MonitoringParameters:
        return ua.MonitoringParameters(ClientHandle=tag.handle, SamplingInterval=sampling_interval * 1000,
                                       QueueSize=self.params.queue_size, DiscardOldest=True)

    async def set_sampling_interval(self, seconds: float) -> list[float]:
        """ModifyMonitoredItems on every item, in one request: the subscription and its items stay;
        returns the revised intervals the server answered (ms). Raises NodeError if one is refused."""
        assert self.subscription is not None and self.subscription_id is not None
        params = ua.ModifyMonitoredItemsParameters(SubscriptionId=self.subscription_id,
                                                   TimestampsToReturn=ua.TimestampsToReturn.Both)
        for tag in self.tags:
            params.ItemsToModify.append(ua.MonitoredItemModifyRequest(
                MonitoredItemId=self.item_ids[tag.handle], RequestedParameters=self._parameters(tag, seconds)))
        results = await self.subscription.server.modify_monitored_items(params)
        refused = [(tag, r.StatusCode) for tag, r in zip(self.tags, results, strict=True) if not r.StatusCode.is_good()]
        if refused:
            raise NodeError("; ".join(f"node {tag.node_text!r}: sampling interval {seconds}s refused: {code.name}"
                                      for tag, code in refused))
        self.revised_sampling = {tag.handle: r.RevisedSamplingInterval for tag, r in zip(self.tags, results,
                                                                                          strict=True)}
        self.sampling_interval = seconds
        return sorted(set(self.revised_sampling.values()))

    async def close(self) -> None:
        """Disconnect (deleting the subscription on a live server); quiet and bounded on a dead one."""
        client, self.client = self.client, None
        self.mark_lost("closed")
        if client is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), self.params.request_timeout)
