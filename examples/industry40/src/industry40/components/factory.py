"""``industry40.factory``: a simulated factory of the original system (one per replica).

It beats every ``heartbeat_interval`` on ``factory/<id>/heartbeat`` (``mms.factory_heartbeat``:
metrics cpu/memory/errors, timestamp, latencyMs), holds the orders the PMS assigns to it
(``sched.order_assigned`` on ``factory/<id>/orders``; ``sched.order_revoked`` on
``factory/<id>/orders/revoked`` drops one), works on ``lines`` of them at a time and reports
``sched.order_progress`` and, after ``setup_time + quantity x seconds_per_unit``,
``sched.order_completed``.

Failure modes (``params.modes`` at start, ``industry40.factory_mode`` on ``factory/<id>/mode`` at
run time, the plant's chaos): **stop** — no beats and no work; **degraded** — each beat late by a
random ``degraded_delay_min..max`` and the error count rising; **flapping** — alternately silent
(``flap_down``) and beating (``flap_up``); **recover** — back to normal. A stopped factory keeps
the orders it holds (the PMS moves them and revokes them here) and resumes those it still holds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from forge_core import Check, Component, Envelope, Publishes, Subscribes
from forge_core.transport import topic_level
from industry40.downs import last_beats
from industry40.settings import FactoryParams

HEARTBEAT = "mms.factory_heartbeat"
ASSIGNED = "sched.order_assigned"
REVOKED = "sched.order_revoked"
PROGRESS = "sched.order_progress"
COMPLETED = "sched.order_completed"
MODE = "industry40.factory_mode"
NORMAL, STOP, DEGRADED, FLAPPING = "normal", "stop", "degraded", "flapping"


def simulated_factories(runtime: Any, component: str) -> tuple[FactoryParams, list[str]]:
    """The params and ids (``factory-1`` ...) of ``component``'s replicas, read from the running plant's
    manifest; defaults and no ids without a runtime or such a component."""
    spec = None if runtime is None else runtime.manifest.components.get(component)
    if spec is None:
        return FactoryParams(), []
    params = FactoryParams.load(spec.params or {}, where=f"components.{component}.params")
    return params, [params.factory_id(i) for i in range(spec.replicas)]


@dataclass
class Order:
    id: str
    quantity: int
    product: str
    duration: float
    done: float = 0.0  # seconds of work done
    task: asyncio.Task[Any] | None = None

    @property
    def started(self) -> bool:
        return self.task is not None


class Factory(Component):
    Params = FactoryParams
    params: FactoryParams
    # {factory_id}: each instance its own (its factory id)
    publishes = (Publishes(HEARTBEAT, topic="factory/{factory_id}/heartbeat", key="factoryId"),
                 Publishes(PROGRESS, topic="factory/{factory_id}/progress"),
                 Publishes(COMPLETED, topic="factory/{factory_id}/completed"))
    subscribes = (Subscribes(ASSIGNED, topic="factory/{factory_id}/orders", shared=False),
                  Subscribes(REVOKED, topic="factory/{factory_id}/orders/revoked", shared=False),
                  Subscribes(MODE, topic="factory/{factory_id}/mode", shared=False))

    async def start(self) -> None:
        p = self.params
        self.factory_id = topic_level(p.factory_id(self.ctx.replica))
        self.capacity = p.capacities.get(self.factory_id, p.capacity)
        self.orders: dict[str, Order] = {}
        self._finished: deque[str] = deque(maxlen=1000)  # a redelivered assignment of a made order is not new
        self.newest_epoch: int | None = None
        self.errors = 0
        self.silent = False
        self._awake = asyncio.Event()  # set while the factory beats and works
        self._flapper: asyncio.Task[Any] | None = None
        self._last_beats = last_beats(self.ctx)  # the chaos run's DOWN watch reads it (industry40.downs)
        self.stats = {"beats": 0, "assigned": 0, "revoked": 0, "completed": 0, "progress": 0, "duplicates": 0,
                      "stale": 0, "over_capacity": 0, "modes": 0, "foreign": 0}
        self.max_held = 0
        self.mode = NORMAL
        self.set_mode(p.modes.get(self.factory_id, NORMAL))
        base = f"factory/{self.factory_id}"
        self.topics = {"heartbeat": f"{base}/heartbeat", "progress": f"{base}/progress",
                       "completed": f"{base}/completed"}
        await self.ctx.subscribe(f"{base}/orders", self.on_assigned, types=[ASSIGNED], shared=False)
        await self.ctx.subscribe(f"{base}/orders/revoked", self.on_revoked, types=[REVOKED], shared=False)
        await self.ctx.subscribe(f"{base}/mode", self.on_mode, types=[MODE], shared=False)
        self._late: float | None = None  # a degraded beat's delay, drawn at its tick
        # an on-time beat's latencyMs, rounded once: round(x, 1) is ~2,600 machine instructions (a decimal
        # conversion there and back), a tenth of a beat's own work
        self._on_time_latency = round(p.base_latency_ms, 1)
        self.ctx.timer(p.heartbeat_interval, self._heartbeat, name="heartbeat")

    # -- modes -----------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """normal | stop | degraded | flapping (``recover`` is normal)."""
        mode = NORMAL if mode == "recover" else mode
        if self._flapper is not None:
            self._flapper.cancel()
            self._flapper = None
        if mode != self.mode:
            self.ctx.log.info("%s: %s -> %s", self.factory_id, self.mode, mode)
        self.mode = mode
        self._silence(mode == STOP)
        if mode == FLAPPING:
            self._flapper = self.ctx.spawn(self._flapping(), name="flapping")

    def _silence(self, silent: bool) -> None:
        self.silent = silent
        if silent:
            self._awake.clear()
        else:
            self._awake.set()

    async def _flapping(self) -> None:
        while True:  # silent first: a flap starts with a failure
            self._silence(True)
            await self.ctx.clock.sleep(self.params.flap_down)
            self._silence(False)
            await self.ctx.clock.sleep(self.params.flap_up)

    async def on_mode(self, envelope: Envelope) -> None:
        body = envelope.payload
        if body.get("factoryId") != self.factory_id:
            self.stats["foreign"] += 1
            return
        self.stats["modes"] += 1
        self.set_mode(body["mode"])

    # -- heartbeats ------------------------------------------------------------------------
    # The beats run on a timer callback of the loop (ctx.timer), not in a task sleeping per beat: no task
    # wake-up, sleep coroutine or future per beat. A degraded factory's beat comes a random delay after
    # its tick, the next tick an interval after the beat; a publish that waits (a broker) delays the next
    # tick until it is done, as the task's loop awaited it.
    def _heartbeat(self) -> float | Awaitable[None] | None:
        """The timer's call: a tick (in degraded mode: draws the delay, the beat comes that much later) or a
        beat; returns the delay to the next call."""
        p = self.params
        late, self._late = self._late, None
        if late is None and self.mode == DEGRADED:
            self._late = self.ctx.random.uniform(p.degraded_delay_min, p.degraded_delay_max)
            return self._late
        if self.silent:
            return None
        return self.beat(0.0 if late is None else late)  # a publish that waits: the next tick after it

    def beat(self, delay: float = 0.0) -> asyncio.Task[None] | None:
        """Publish a heartbeat now (``delay``: how late it is); the task finishing it if the transport waits."""
        p, rnd = self.params, self.ctx.random
        degraded = self.mode == DEGRADED
        if degraded:
            self.errors += p.degraded_errors
        elif p.error_probability and rnd.random() < p.error_probability:
            self.errors += 1
        load = len(self.orders) / self.capacity if self.capacity else 1.0
        cpu = min(100.0, (75.0 if degraded else 20.0) + 40.0 * min(load, 1.0) * rnd.uniform(0.5, 1.0))
        memory = min(100.0, (70.0 if degraded else 30.0) + rnd.uniform(0.0, 20.0))
        payload = {"factoryId": self.factory_id, "timestamp": round(self.ctx.clock.time(), 3),
                   "metrics": {"cpu": round(cpu, 1), "memory": round(memory, 1), "errors": self.errors},
                   "latencyMs": round(p.base_latency_ms + delay * 1000.0, 1) if delay else self._on_time_latency}
        return self.ctx.publish_soon(self.topics["heartbeat"], HEARTBEAT, payload, key=self.factory_id,
                                     on_published=self._beaten)

    def _beaten(self, envelope: Envelope) -> None:
        self.stats["beats"] += 1
        self._last_beats[self.factory_id] = self.ctx.clock.time()

    # -- orders ----------------------------------------------------------------------------
    async def on_assigned(self, envelope: Envelope) -> None:
        body = envelope.payload
        if body.get("factoryId") != self.factory_id:
            self.stats["foreign"] += 1
            return
        order_id = body["orderId"]
        epoch = body.get("epoch")
        if isinstance(epoch, int):
            if self.newest_epoch is not None and epoch < self.newest_epoch:
                self.stats["stale"] += 1  # a deposed scheduler's late assignment
                self.ctx.log.info("%s: dropped %s of stale epoch %d (newest %d)", self.factory_id, order_id, epoch,
                                  self.newest_epoch)
                return
            self.newest_epoch = epoch
        if order_id in self.orders or order_id in self._finished:
            self.stats["duplicates"] += 1
            return
        quantity = int(body["quantity"])
        self.orders[order_id] = Order(order_id, quantity, body["productType"],
                                      self.params.setup_time + quantity * self.params.seconds_per_unit)
        self.stats["assigned"] += 1
        if len(self.orders) > self.capacity:
            self.stats["over_capacity"] += 1
            self.ctx.log.warning("%s: holds %d orders, capacity %d", self.factory_id, len(self.orders),
                                 self.capacity)
        self.max_held = max(self.max_held, len(self.orders))
        self._start_work()

    async def on_revoked(self, envelope: Envelope) -> None:
        body = envelope.payload
        if body.get("factoryId") != self.factory_id:
            self.stats["foreign"] += 1
            return
        order = self.orders.pop(body["orderId"], None)
        if order is None:
            return
        self.stats["revoked"] += 1
        if order.task is not None:
            order.task.cancel()
        self._start_work()

    def _start_work(self) -> None:
        started = sum(1 for o in self.orders.values() if o.started)
        for order in self.orders.values():
            if started >= self.params.lines:
                return
            if not order.started:
                order.task = self.ctx.spawn(self._make(order), name=f"make:{order.id}")
                started += 1

    async def _make(self, order: Order) -> None:
        p, clock = self.params, self.ctx.clock
        await self._awake.wait()
        await self._progress(order)
        while order.done < order.duration:
            await self._awake.wait()  # a stopped factory makes nothing
            step = min(p.progress_every, order.duration - order.done)
            await clock.sleep(step)
            order.done += step
            if order.done < order.duration:
                await self._progress(order)
        await self._awake.wait()  # the completion is sent by a running factory
        if self.orders.get(order.id) is not order:
            return  # revoked meanwhile
        del self.orders[order.id]
        self._finished.append(order.id)
        await self.ctx.publish(self.topics["completed"], COMPLETED,
                               {"orderId": order.id, "factoryId": self.factory_id}, key=self.factory_id)
        self.stats["completed"] += 1
        self._start_work()

    async def _progress(self, order: Order) -> None:
        progress = round(min(order.done / order.duration, 1.0), 3) if order.duration else 0.0
        await self.ctx.publish(self.topics["progress"], PROGRESS,
                               {"orderId": order.id, "factoryId": self.factory_id, "progress": progress},
                               key=self.factory_id)
        self.stats["progress"] += 1

    # -- views -----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {"factoryId": self.factory_id, "mode": self.mode, "beating": not self.silent,
                "orders": len(self.orders), "capacity": self.capacity}

    def report(self) -> dict[str, Any]:
        return {"factoryId": self.factory_id, "mode": self.mode, "capacity": self.capacity,
                "held": len(self.orders), "max_held": self.max_held, "errors": self.errors, **self.stats}

    def checks(self) -> list[Check]:
        over = self.stats["over_capacity"]
        return [Check(f"{self.factory_id} never held more orders than its capacity", over == 0,
                      f"most held {self.max_held} of {self.capacity}" if not over else
                      f"{over} assignment(s) beyond capacity {self.capacity} (most held {self.max_held})")]
