"""``industry40.chaos``: seeded failures for the Industry 4.0 plant.

Every ``min_interval..max_interval`` seconds (the instance's seeded random stream, so ``--seed N``
replays a day) it draws one action by ``weights``:

* **stop / degraded / flapping** a factory that is normal (at most ``max_failed_factories`` at
  once), with ``industry40.factory_mode`` on ``factory/<id>/mode``; ``recover`` after
  ``min_outage..max_outage``;
* **kill_mms**: the MMS replica holding the MMS lease, ``runtime.kill`` (SIGKILL semantics: no
  stop, no lease release; an OS process in the distributed profile), revived after the outage;
* **kill_pms**: the PMS (the order scheduler replica holding its lease) the same way.

A kill needs another live replica of the component: killing the last one is an outage of the
service, not a failover, and would measure the clients' patience rather than the plant (a chaos
hour killed both PMS replicas within their outages and the clients gave up two orders).

With ``watch_drains`` it also follows the MMS's risk changes and the factories' orders
(:mod:`industry40.drains`) and checks, at each stop, that a factory at HIGH risk was drained before
it failed when another factory had room. With ``watch_downs`` it follows the beats, the MMS's
verdicts and the PMS's leadership too (:mod:`industry40.downs`): every order of a DOWN factory moved
within the detection bound plus one scheduling pass, none assigned to a DOWN factory. With
``replay_stale``, after each MMS failover it replays the deposed leader's last report with its old
epoch (:mod:`industry40.stale`): the PMS must refuse it.

Each action is reported on ``chaos/events`` (``industry40.chaos_event``). Off unless ``enabled``
(profile ``chaos``). Like the pasta plant's chaos, it runs in the parent process when instances are
processes, so it can kill and revive them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from forge_mms.settings import FactoryMonitorParams
from forge_sched.settings import OrderSchedulerParams

from forge_core import Check, Component, Envelope, Publishes, Subscribes, TransportError
from industry40.components.factory import ASSIGNED, COMPLETED, MODE, PROGRESS, REVOKED, simulated_factories
from industry40.downs import Bound, Down, DownWatch, last_beats
from industry40.drains import DrainWatch
from industry40.settings import ChaosParams
from industry40.stale import Replay, StaleReplays

EVENT = "industry40.chaos_event"
FACTORY_ACTIONS = ("stop", "degraded", "flapping")
RISK_CHANGED = "mms.risk_changed"
HEARTBEAT, STATUS, LEADERSHIP = "mms.factory_heartbeat", "forge.status", "forge.leadership"
FAILOVER_EVENT, STATUS_REPORT = "mms.failover_event", "mms.status_report"
ORDER_EVENTS = {"factory/+/orders": ASSIGNED, "factory/+/orders/revoked": REVOKED, "factory/+/progress": PROGRESS,
                "factory/+/completed": COMPLETED}


class Chaos(Component):
    Params = ChaosParams
    params: ChaosParams
    publishes = (Publishes(MODE, topic="factory/{factory_id}/mode"),
                 Publishes(EVENT, topic="chaos/events", key="target"),
                 Publishes(STATUS_REPORT, topic="mms/status_report", description="replay_stale: a deposed MMS "
                           "leader's report, through tactics.status_reporter (use: bus)"))
    subscribes = (Subscribes(RISK_CHANGED, param="risk_topic", transport_param="monitor_transport", shared=False),
                  *(Subscribes(kind, topic=topic, shared=False) for topic, kind in ORDER_EVENTS.items()),
                  Subscribes(HEARTBEAT, param="heartbeat_topic", shared=False),
                  Subscribes(STATUS, param="status_topic", transport_param="monitor_transport", shared=False),
                  Subscribes(LEADERSHIP, topic="forge/leader/{pms_lease}", transport_param="monitor_transport",
                             shared=False),
                  Subscribes(FAILOVER_EVENT, param="failover_topic", transport_param="monitor_transport",
                             shared=False))

    async def start(self) -> None:
        self.runtime: Any = self.ctx.services.get("runtime")
        self.started_at = self.ctx.clock.time()
        self.counts: Counter[str] = Counter()
        self.failed: dict[str, str] = {}  # factory id -> mode
        self.dead: set[str] = set()  # instance names
        self.events: list[dict[str, Any]] = []
        self.factory_ids = self._factory_ids()
        self.drains: DrainWatch | None = None
        self.downs: DownWatch | None = None
        self.stale: StaleReplays | None = None
        p, monitor = self.params, self.params.monitor_transport
        if p.enabled and p.watch_drains:
            self.drains = DrainWatch(self._capacity, p.drain_grace)
            await self.ctx.subscribe(p.risk_topic, self.on_risk, types=[RISK_CHANGED], shared=False, transport=monitor)
        if p.enabled and p.watch_downs:
            if self._factories_here():  # their beats stamp the runtime's book: no delivery of every beat
                self.downs = DownWatch(self._bound(), last_beat=last_beats(self.ctx))
            else:
                self.downs = DownWatch(self._bound())
                await self.ctx.subscribe(p.heartbeat_topic, self.on_beat, types=[HEARTBEAT], shared=False)
            await self.ctx.subscribe(p.status_topic, self.on_status, types=[STATUS], shared=False, transport=monitor)
            await self.ctx.subscribe(f"forge/leader/{p.pms_lease}", self.on_leadership, types=[LEADERSHIP],
                                     shared=False, transport=monitor)
        if self.drains is not None or self.downs is not None:
            for topic, kind in ORDER_EVENTS.items():
                await self.ctx.subscribe(topic, self.on_order_event, types=[kind], shared=False)
        if p.enabled and p.replay_stale:
            self.stale = StaleReplays()
            self.reporter: Any = self.ctx.tactics.get("status_reporter")
            reporter_start = getattr(self.reporter, "start", None)
            if reporter_start is not None:
                await reporter_start(self.ctx)
        if self.stale is not None or self.downs is not None:
            await self.ctx.subscribe(p.failover_topic, self.on_failover_event, types=[FAILOVER_EVENT], shared=False,
                                     transport=monitor)
        if self.params.enabled and self.runtime is not None:
            self.ctx.spawn(self._rampage(), name="chaos")

    def _factories_here(self) -> bool:
        """Every factory replica runs in this process (the embedded profile)."""
        spec = None if self.runtime is None else self.runtime.manifest.components.get(self.params.factories)
        if spec is None:
            return False
        component = self.params.factories
        names = [component] if spec.replicas == 1 else [f"{component}-{i}" for i in range(spec.replicas)]
        return all(name in self.runtime.supervisors for name in names)

    def _factory_ids(self) -> list[str]:
        self.factory_params, ids = simulated_factories(self.runtime, self.params.factories)
        return ids

    def _params_of(self, component: str, params: Any) -> Any:
        """``component``'s params as the plant runs them (the class's defaults when it is not in the plant)."""
        spec = None if self.runtime is None else self.runtime.manifest.components.get(component)
        return params.load(spec.params or {} if spec is not None else {}, where=f"components.{component}.params")

    def _bound(self) -> Bound:
        """The DOWN bound's parts: the MMS's silence rule and check, the PMS's pass, the MMS's report retry."""
        mms: FactoryMonitorParams = self._params_of(self.params.mms, FactoryMonitorParams)
        pms: OrderSchedulerParams = self._params_of(self.params.pms, OrderSchedulerParams)
        _use, _factory, reporter = self.ctx.tactics.implementation("status_reporter")
        retry = self.ctx.tactics.retry()
        return Bound(mms.max_gap, mms.check_every, pms.schedule_interval,
                     float(getattr(reporter, "timeout", 0.0)) + max(mms.resend_after, retry.max_backoff))

    def _capacity(self, factory: str) -> int:
        return self.factory_params.capacities.get(factory, self.factory_params.capacity)

    # -- watching drains (industry40.drains) -----------------------------------------------------
    async def on_risk(self, envelope: Envelope) -> None:
        body, drains = envelope.payload, self.drains
        factory = body.get("factoryId")
        if drains is None or not isinstance(factory, str):
            return
        was_high = factory in drains.risk_high_since
        drains.risk(factory, str(body.get("risk")), self.ctx.clock.time())
        if not was_high and factory in drains.risk_high_since:
            self.ctx.spawn(self._drain_due(factory, drains.risk_high_since[factory]), name=f"drain:{factory}")

    async def _drain_due(self, factory: str, since: float) -> None:
        await self.ctx.clock.sleep(self.params.drain_grace)
        if self.drains is not None and self.drains.risk_high_since.get(factory) == since:
            self.drains.drain_due(factory, self._down())

    def _down(self) -> set[str]:
        return {f for f, mode in self.failed.items() if mode == "stop"}

    async def on_order_event(self, envelope: Envelope) -> None:
        body, drains, downs = envelope.payload, self.drains, self.downs
        order, factory = body.get("orderId"), body.get("factoryId")
        if not isinstance(order, str) or not isinstance(factory, str):
            return
        now = self.ctx.clock.time()
        if envelope.type == ASSIGNED:
            if drains is not None:
                drains.assigned(factory, order, now)
            if downs is not None:
                downs.assigned(factory, order, now)
        elif envelope.type == PROGRESS:
            if drains is not None:
                drains.started(factory, order)
        else:
            if drains is not None:
                drains.gone(factory, order)
            if downs is not None:
                downs.gone(factory, order, now)

    # -- watching DOWN factories (industry40.downs) ----------------------------------------------
    def on_beat(self, envelope: Envelope) -> None:
        """Sync: a beat only stamps its factory's last beat (4 a second in the plant)."""
        if self.downs is not None:
            factory = envelope.topic.split("/")[1] if envelope.topic.count("/") >= 2 else envelope.key
            if factory:
                self.downs.beat(factory, self.ctx.clock.time())

    def on_status(self, envelope: Envelope) -> None:
        body, downs = envelope.payload, self.downs
        factory = body.get("source") if isinstance(body, dict) else None
        if downs is None or not isinstance(factory, str):
            return
        self._judge_later(downs.status(factory, str(body.get("status")), self.ctx.clock.time()))

    def _judge_later(self, entry: Down | None) -> None:
        if entry is not None and entry.due != float("inf"):
            self.ctx.spawn(self._judge(entry.factory, entry.due), name=f"down:{entry.factory}")

    async def _judge(self, factory: str, due: float) -> None:
        await self.ctx.clock.sleep(max(0.0, due - self.ctx.clock.time()) + 0.001)  # what happens at `due` first
        if self.downs is not None:
            self.downs.judge(factory, self.ctx.clock.time())

    def on_leadership(self, envelope: Envelope) -> None:
        body, downs = envelope.payload, self.downs
        if downs is None or not isinstance(body, dict) or not body.get("leading"):
            return
        for entry in downs.pms_elected(self.ctx.clock.time()):
            self._judge_later(entry)

    # -- replaying a deposed MMS leader's report (industry40.stale) --------------------------------
    def on_failover_event(self, envelope: Envelope) -> None:
        body = envelope.payload
        if not isinstance(body, dict):
            return
        factory = body.get("factoryId")
        if self.downs is not None and body.get("outcome") == "accepted" and isinstance(factory, str):
            self._judge_later(self.downs.reported(factory, str(body.get("status")), self.ctx.clock.time()))
        if self.stale is None:
            return
        replay = self.stale.reported(body)
        if replay is not None:
            self.ctx.spawn(self._replay(replay), name=f"stale:{replay.factory}")

    async def _replay(self, replay: Replay, attempts: int = 3) -> None:
        """Sent as the deposed leader would (its epoch and lease); again later while no PMS answers."""
        assert self.stale is not None
        why = "not sent"
        for _ in range(attempts):
            try:
                result = await self.reporter.report(replay.factory, replay.status, replay.reason, epoch=replay.epoch,
                                                    lease=self.params.mms_lease)
            except (TimeoutError, TransportError) as exc:  # no PMS leads now: as the MMS, try again later
                why = f"{type(exc).__name__}: {exc}"
                await self.ctx.clock.sleep(self.params.min_interval)
                continue
            self.stale.answered(replay, result.accepted, result.code, result.detail)
            await self._event("stale_report", replay.factory, epoch=replay.epoch, newerEpoch=replay.newer,
                              outcome="accepted" if result.accepted else result.code)
            return
        self.stale.lost(replay, why)

    def _instances(self, component: str) -> list[str]:
        if self.runtime is None or component not in self.runtime.manifest.components:
            return []
        replicas = self.runtime.manifest.components[component].replicas
        names = [component] if replicas == 1 else [f"{component}-{i}" for i in range(replicas)]
        return [name for name in names if name in self.runtime.instances()]

    # -- acting ----------------------------------------------------------------------------
    async def _await_leaders(self) -> None:
        """Until both leases have a holder (or ``steady_timeout``): kills drawn while processes still
        start are skipped (nobody leads yet), and a run could end without the failovers it was for."""
        deadline = self.ctx.clock.time() + self.params.steady_timeout
        while self.ctx.clock.time() < deadline:
            holders = [await self._holder(lease) for lease in (self.params.mms_lease, self.params.pms_lease)]
            if all(holders):
                self.counts["steady_after_s"] = round(self.ctx.clock.time() - self.started_at)
                return
            await self.ctx.clock.sleep(1.0)
        self.ctx.log.warning("chaos: no MMS/PMS leader %.0f s after start; acting anyway", self.params.steady_timeout)

    async def _rampage(self) -> None:
        p, rnd = self.params, self.ctx.random
        actions = [a for a, w in p.weights.items() if w > 0]
        weights = [p.weights[a] for a in actions]
        if p.steady_timeout:
            await self._await_leaders()
        while True:
            await self.ctx.clock.sleep(rnd.uniform(p.min_interval, p.max_interval))
            action = rnd.choices(actions, weights)[0]
            outage = round(rnd.uniform(p.min_outage, p.max_outage), 3)
            if action in FACTORY_ACTIONS:
                await self._fail_factory(action, outage)
            elif action == "kill_mms":
                await self._kill(p.mms, p.mms_lease, outage)
            else:
                await self._kill(p.pms, p.pms_lease, outage)

    async def _fail_factory(self, mode: str, outage: float) -> None:
        healthy = [f for f in self.factory_ids if f not in self.failed]
        if len(self.failed) >= self.params.max_failed_factories or not healthy:
            self.counts["skipped"] += 1
            return
        factory = self.ctx.random.choice(healthy)
        if mode == "stop" and self.drains is not None:
            self.drains.failed(factory, self.ctx.clock.time(), self._down())
        self.failed[factory] = mode
        await self.set_mode(factory, mode, f"chaos: {mode} for {outage}s")
        await self._event(mode, factory, restartIn=outage)
        self.ctx.spawn(self._recover(factory, outage), name=f"recover:{factory}")

    async def set_mode(self, factory: str, mode: str, reason: str) -> None:
        await self.ctx.publish(f"factory/{factory}/mode", MODE, {"factoryId": factory, "mode": mode,
                                                                 "reason": reason}, key=factory)

    async def _recover(self, factory: str, after: float) -> None:
        await self.ctx.clock.sleep(after)
        await self.set_mode(factory, "recover", "chaos: outage over")
        self.failed.pop(factory, None)
        await self._event("recover", factory)

    async def _kill(self, component: str, lease: str, outage: float) -> None:
        instances = [name for name in self._instances(component) if name not in self.dead]
        if len(instances) < 2:  # the last live replica: killing it is an outage of the service, not a failover
            self.counts["skipped"] += 1
            return
        holder = await self._holder(lease)
        victim = holder if holder in instances else None
        if victim is None:  # nobody leads (a failover under way): let it settle
            self.counts["skipped"] += 1
            return
        await self.runtime.kill(victim)
        if component == self.params.pms and self.downs is not None:
            self.downs.pms_lost(self.ctx.clock.time())  # no PMS leads until a successor says so
        self.dead.add(victim)
        self.counts[f"kill:{component}"] += 1
        await self._event("kill", victim, wasLeader=victim == holder, restartIn=outage)
        self.ctx.spawn(self._revive(victim, outage), name=f"revive:{victim}")

    async def _holder(self, lease: str) -> str | None:
        try:
            current = await self.ctx.tactics.lease_backend().current(lease, self.ctx.clock.time())
        except Exception as exc:  # no lease tactic configured, or its store is down: no leader known
            self.ctx.log.info("chaos: lease %r unknown (%s)", lease, exc)
            return None
        return None if current is None else current.holder

    async def _revive(self, name: str, after: float) -> None:
        await self.ctx.clock.sleep(after)
        self.runtime.revive(name)
        self.dead.discard(name)
        await self._event("revive", name)

    async def _event(self, action: str, target: str, **extra: Any) -> None:
        self.counts[action] += 1
        event = {"action": action, "target": target, **extra}
        self.events.append({"at": round(self.ctx.clock.time(), 3), **event})
        del self.events[:-50]
        self.ctx.log.info("chaos: %s", event)
        await self.ctx.publish("chaos/events", EVENT, event, key=target)

    # -- views -----------------------------------------------------------------------------
    def checks(self) -> list[Check]:
        found = [self.drains.check()] if self.drains is not None else []
        if self.downs is not None:
            found += self.downs.checks()
        if self.stale is not None:
            found.append(self.stale.check())
        return found

    def report(self) -> dict[str, Any]:
        if not self.params.enabled:
            return {"enabled": False}
        return {"enabled": True, **dict(sorted(self.counts.items())), "failed_at_end": dict(self.failed),
                "dead_at_end": sorted(self.dead), "latest": self.events[-5:]}
