"""``oee_line.gateway``: the edge gateway's glue, OPC UA data changes -> the edge node's metric updates.

``opcua.source`` publishes one ``opcua.data_change`` per monitored item notification; the tag
``M1/State`` (browsed) or ``M1.State`` (given) names the machine (a Sparkplug device) and the
metric. The PLC's source timestamp becomes the metric's timestamp (ms), so the stored sample says
when the machine did it. Order per tag is the bus's order; the edge node keeps it on the wire.

What arrives together (the changes of one OPC UA Publish response, delivered back to back: a part's
GoodCount and TotalCount, a transition's State, StateCode and FaultCode) goes out as one update per
machine, so one DATA: the changes are held until the delivery loop yields (no timer) and then sent in
arrival order; a metric already held starts a new update, so no value is folded away. With ``window`` (seconds
of plant time) a machine's changes are held that long after the first and go out as one update carrying
every value in arrival order, a metric as often as it changed (the edge node reports each: one DATA of
several instants). An update the bus refuses dead-letters the data changes it carried.
"""

from __future__ import annotations

import asyncio
from typing import Any

from forge_core import Component, DeadLetter, Envelope, Flow, Subscribes
from forge_core import dead_letters as dl
from oee_line.settings import GatewayParams

__all__ = ["Gateway", "split_tag"]


def split_tag(tag: str, separators: str) -> tuple[str, str] | None:
    """``(machine, metric)`` from ``M1/State`` or ``M1.State``; None for a tag with no separator."""
    for sep in separators:
        machine, found, metric = tag.partition(sep)
        if found and machine and metric:
            return machine, metric
    return None


def _holds(metrics: list[dict[str, Any]], name: str) -> bool:
    """Whether an update being held already has metric ``name`` (a loop: ``any`` over a generator cost more)."""
    for metric in metrics:  # noqa: SIM110 (any() over a generator: a frame more per data change)
        if metric["name"] == name:
            return True
    return False


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
        self.stats = {"changes": 0, "forwarded": 0, "unmapped": 0, "updates": 0, "errors": 0}
        #: held until the delivery loop yields: per machine, its updates (each a list of metrics, a name at most
        #: once) with the data changes they carry, in arrival order
        self.held: dict[str, list[tuple[list[dict[str, Any]], list[Envelope]]]] = {}
        self._tags: dict[str, tuple[str, str] | None] = {}  # tag -> split_tag's answer
        # one flusher for the component's life, woken when something is held: a task spawned per burst cost a
        # task, its first step and its done callback for every part (the simulated day's gateway)
        self._due = asyncio.Event()
        self._order = asyncio.Lock()  # flushes go out in the order they were taken (the flusher's, stop()'s)
        self.ctx.spawn(self._flusher(), name="flush")
        for pattern in p.topics:
            await self.ctx.subscribe(pattern, self.on_change, types=["opcua.data_change"])

    def on_change(self, envelope: Envelope) -> None:  # sync: the bus delivers it without a coroutine (no await here)
        self.stats["changes"] += 1
        body = envelope.payload
        tag = str(body.get("tag", ""))
        try:
            parts = self._tags[tag]
        except KeyError:  # a plant's tags are few: each split once (every data change of the day comes here)
            parts = split_tag(tag, self.params.separators)
            if len(self._tags) < 10_000:
                self._tags[tag] = parts
        if parts is None or parts[0] == "Diagnostics":
            self.stats["unmapped"] += 1
            return
        machine, metric = parts
        ts = body.get("source_timestamp") or body.get("server_timestamp") or self.ctx.clock.time()
        update: dict[str, Any] = {"name": metric, "value": body.get("value"), "timestamp": round(ts * 1000)}
        updates = self.held.get(machine)
        if updates is None:
            updates = self.held[machine] = []
        if not updates or (not self.params.window and _holds(updates[-1][0], metric)):
            updates.append(([], []))
        last = updates[-1]
        last[0].append(update)
        last[1].append(envelope)
        self._due.set()

    async def _flusher(self) -> None:
        while True:
            await self._due.wait()
            if self.params.window:
                await self.ctx.clock.sleep(self.params.window)
            await self._flush()

    async def _flush(self) -> None:
        async with self._order:
            self._due.clear()
            held, self.held = self.held, {}
            for machine, updates in held.items():
                for metrics, changes in updates:
                    await self._send(machine, metrics, changes)

    async def _send(self, machine: str, metrics: list[dict[str, Any]], changes: list[Envelope]) -> None:
        try:
            await self.ctx.publish(self.updates_topic, "sparkplug.metric_update",
                                   {"device": machine, "metrics": metrics}, key=machine)
        except Exception as exc:  # as the bus does with a handler's error: the data changes are kept
            self.stats["errors"] += len(changes)
            self.ctx.log.error("gateway: update of %s (%d metrics) refused, data changes dead-lettered: %s",
                               machine, len(metrics), exc)
            now = self.ctx.clock.time()
            for change in changes:
                self.ctx.bus.dead_letters.put(DeadLetter(
                    dl.HANDLER_ERROR, f"{type(exc).__name__}: {exc}", change.topic, str(self.ctx.transport or ""),
                    now, [], self.name, change))
            return
        if not self.stats["updates"]:  # the first one: the flusher is woken and the edge node takes updates
            self.ctx.log.info("gateway: first metric update sent (%s, %d metrics) on %s", machine, len(metrics),
                              self.updates_topic)
        self.stats["updates"] += 1
        self.stats["forwarded"] += len(metrics)

    async def stop(self) -> None:
        await self._flush()  # what was held goes out before the component stops (a flush not yet run finds none)

    def report(self) -> dict[str, Any]:
        return dict(self.stats)
