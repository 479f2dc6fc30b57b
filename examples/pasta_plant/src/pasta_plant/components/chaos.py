"""``pasta.chaos`` (the seed's ChaosPanda): kills a random machine or scheduler every
``min_interval``..``max_interval`` seconds and brings it back after ``min_restart``..``max_restart``.

A kill is ``runtime.kill(name)`` — SIGKILL semantics: no stop, no lease release — and a restart
``runtime.revive(name)``. With ``machine_kill: command`` a machine is killed softly instead:
KillMachine on ``updateManager/killMachine`` puts it in RECOVERY. Each kill is reported on
``experiment`` (KillingMachine / KillingScheduler).

Chaos also measures what the kills cost, and checks it: after a machine death the surviving
machines cut both blades again within ``rebalance_bound``; after the leading scheduler's death a
successor holds the lease within ``failover_bound``. Off unless ``enabled`` (profile ``chaos``).

The first kill waits for the plant's steady state (a scheduler leads and both blades are cut), as a
chaos experiment should: a kill during start-up would measure the plant's start-up, not its
recovery. A plant not steady within ``steady_timeout`` fails a check and is attacked anyway.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forge_core import Check, Component, Envelope, Publishes, subscribe
from pasta_plant.components.machine import WORKING
from pasta_plant.ledger import ledger
from pasta_plant.settings import ChaosParams, MachineParams

if TYPE_CHECKING:
    from forge_core.tactics import Grant


@dataclass
class Outage:
    kind: str  # machine | scheduler
    name: str
    at: float
    was_leader: bool = False
    resolved_at: float | None = None
    bound: float = 0.0
    epoch: int | None = None
    note: str = ""

    @property
    def took(self) -> float | None:
        return None if self.resolved_at is None else self.resolved_at - self.at


def _granted_after(outage: Outage, grants: list[Grant], now: float) -> float:
    """When the successor was granted the lease: the first grant of a newer epoch than the dead
    leader's, not the moment this watch (polling, perhaps starved) saw it; ``now`` if none is recorded."""
    # grants come oldest first and a lease's epoch only grows: a bisection, not a scan of the day's
    # ~1,500 grants for each of its ~1,500 leader deaths
    first = 0 if outage.epoch is None else bisect_right(grants, outage.epoch, key=_epoch)
    return min(now, max(outage.at, grants[first].at)) if first < len(grants) else now


def _epoch(grant: Grant) -> int:
    return grant.epoch


@dataclass
class Tally:
    machine_kills: int = 0
    scheduler_kills: int = 0
    leader_kills: int = 0
    restarts: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


class Chaos(Component):
    Params = ChaosParams
    publishes = (Publishes("pasta.kill_machine", topic="updateManager/killMachine", key="machineId"),
                 Publishes(("pasta.killing_machine", "pasta.killing_scheduler"), topic="experiment"))
    params: ChaosParams

    async def start(self) -> None:
        self.enabled = self.params.enabled
        self.runtime = self.ctx.services.get("runtime")
        self.tally = Tally()
        self.dead: dict[str, float] = {}  # name -> revive time
        self.warming: dict[str, float] = {}  # name -> end of its revive_grace: still down for picking victims
        self.outages: list[Outage] = []
        self._settled = 0
        self.leader: tuple[str, int] | None = None
        self.started_at = self.ctx.clock.time()
        self.steady_at: float | None = None  # when the first kill was allowed (None: never steady)
        self.book = ledger(self.ctx)
        self.beats: dict[int, tuple[float, str | None]] = {}  # machineId -> (time, blade) of its last beat
        self.machines = self._instances(self.params.machines)
        self.schedulers = self._instances(self.params.schedulers)
        if self.runtime is None or any(n not in self.runtime.supervisors for n in self.machines):
            # machines in other processes are known by their beats; those in this one by the ledger, so
            # the beats are not delivered here for nothing (one delivery per beat, ~52,000 a day)
            await self.ctx.subscribe("heartbeats", self.on_heartbeat, types=["sched.machine_heartbeat"], shared=False)
        leader = self.ctx.tactics.settings("leader")
        bound = self.params.failover_bound
        self.failover_bound = float(bound) if bound is not None else leader.ttl + leader.retry_every + 1.0
        if not self.enabled or self.runtime is None:
            return
        self.ctx.spawn(self._rampage(), name="chaos")
        self._watcher: Any = None

    def _instances(self, component: str) -> list[str]:
        if self.runtime is None or component not in self.runtime.manifest.components:
            return []
        replicas = self.runtime.manifest.components[component].replicas
        names = [component] if replicas == 1 else [f"{component}-{i}" for i in range(replicas)]
        return [name for name in names if name in self.runtime.instances()]  # in this process or a child

    # -- killing ---------------------------------------------------------------------------
    async def _await_steady(self) -> None:
        """Until a scheduler leads and every live machine cuts, both blades (at most ``steady_timeout``)."""
        deadline = self.started_at + self.params.steady_timeout
        while self.ctx.clock.time() < deadline:
            lease = await self._lease() if self.schedulers else None
            if (lease is not None or not self.schedulers) and self._covered():
                self.steady_at = self.ctx.clock.time()
                return
            await self.ctx.clock.sleep(self.params.check_every)
        self.ctx.log.warning("chaos: plant not steady %.0f s after start; attacking anyway",
                             self.params.steady_timeout)

    async def _rampage(self) -> None:
        rnd = self.ctx.random
        await self._await_steady()
        while True:
            wait = rnd.uniform(self.params.min_interval, self.params.max_interval)
            await self.ctx.clock.sleep(wait)
            now = self.ctx.clock.time()
            self.warming = {n: until for n, until in self.warming.items() if until > now}
            # A revived process is not up at once (interpreter, imports, connections: seconds on a busy
            # machine): killing the leader while the other scheduler still starts measures its start, not
            # a failover (CI, stop 23: failover 7.7 s > 7 s, the standby spawned 9 s before it led).
            down = self.dead.keys() | self.warming.keys()
            dead_machines = sum(1 for n in down if n in self.machines)
            dead_schedulers = sum(1 for n in down if n in self.schedulers)
            candidates: list[str] = []
            if dead_machines < self.params.max_machines:
                candidates += [n for n in self.machines if n not in down]
            if dead_schedulers < self.params.max_schedulers:
                candidates += [n for n in self.schedulers if n not in down]
            if not candidates:
                continue
            victim = rnd.choice(candidates)
            restart_in = round(rnd.uniform(self.params.min_restart, self.params.max_restart), 3)
            if victim in self.machines:
                await self._kill_machine(victim, restart_in)
            else:
                await self._kill_scheduler(victim, restart_in)

    async def _kill_machine(self, name: str, restart_in: float) -> None:
        machine_id = self.machines.index(name)
        record = self.book.machines.get(machine_id)
        now = self.ctx.clock.time()
        mode = self.params.machine_kill
        if mode == "process":
            await self.runtime.kill(name)
            if record is not None:
                record.alive = False
            self.ctx.spawn(self._revive(name, restart_in), name=f"revive:{name}")
        else:
            await self.ctx.publish("updateManager/killMachine", "pasta.kill_machine",
                                   {"title": "KillMachine", "machineId": machine_id}, key=str(machine_id))
            self.ctx.spawn(self._recovered(name, restart_in), name=f"recover:{name}")
        self.dead[name] = now + restart_in
        self.tally.machine_kills += 1
        self.outages.append(Outage("machine", name, now, bound=self.params.rebalance_bound))
        self._watch_outages()
        await self._event("KillingMachine", "pasta.killing_machine",
                          {"title": "KillingMachine", "machineId": machine_id, "restartIn": restart_in, "mode": mode})

    async def _kill_scheduler(self, name: str, restart_in: float) -> None:
        lease = await self._lease()
        was_leader = lease is not None and lease[0] == name
        now = self.ctx.clock.time()
        await self.runtime.kill(name)
        self.dead[name] = now + restart_in
        self.ctx.spawn(self._revive(name, restart_in), name=f"revive:{name}")
        self.tally.scheduler_kills += 1
        if was_leader:
            self.tally.leader_kills += 1
            self.outages.append(Outage("scheduler", name, now, True, bound=self.failover_bound,
                                       epoch=lease[1] if lease else None))
            self._watch_outages()
        await self._event("KillingScheduler", "pasta.killing_scheduler",
                          {"title": "KillingScheduler", "scheduler": name, "wasLeader": was_leader,
                           "restartIn": restart_in})

    async def _event(self, title: str, type_: str, payload: dict[str, Any]) -> None:
        self.tally.events.append({"at": round(self.ctx.clock.time(), 3), **payload})
        self.ctx.log.info("chaos: %s", payload)
        await self.ctx.publish("experiment", type_, payload)

    async def _revive(self, name: str, after: float) -> None:
        await self.ctx.clock.sleep(after)
        self.runtime.revive(name)
        self.dead.pop(name, None)
        if self.params.revive_grace:
            self.warming[name] = self.ctx.clock.time() + self.params.revive_grace
        self.tally.restarts += 1

    async def _recovered(self, name: str, after: float) -> None:
        await self.ctx.clock.sleep(max(after, self._machine_params().recovery_time))
        self.dead.pop(name, None)
        self.tally.restarts += 1

    def _machine_params(self) -> MachineParams:
        """The machines' params as their component reads them (its declaration fills the defaults)."""
        spec = self.runtime.manifest.components.get(self.params.machines)
        return MachineParams.load(spec.params if spec is not None else {}, where=f"components.{self.params.machines}")

    # -- measuring -------------------------------------------------------------------------
    async def _lease(self) -> tuple[str, int] | None:
        lease = await self.ctx.tactics.lease_backend().current(self.params.lease, self.ctx.clock.time())
        return None if lease is None else (lease.holder, lease.epoch)

    def _covered(self) -> bool:
        """Every live machine cuts, and both blades are cut (when two or more machines live).

        Machines in this process are read from the ledger; machines in other processes (the
        distributed profile, chaos in the parent) from their heartbeats: a machine cuts when its
        latest beat, at most 1.5 heartbeat intervals old, names a blade."""
        if not self.book.machines:
            now, window = self.ctx.clock.time(), 1.5 * self._machine_params().heartbeat_interval
            beats = [self.beats.get(i) for i, name in enumerate(self.machines) if name not in self.dead]
            if any(b is None or now - b[0] > window or b[1] is None for b in beats):
                return False
            return len(beats) < 2 or {b[1] for b in beats if b is not None} >= {"A", "B"}
        live = [r for i, r in self.book.machines.items()
                if i < len(self.machines) and self.machines[i] not in self.dead and r.alive]
        if any(r.state != WORKING for r in live):
            return False
        return len(live) < 2 or {r.blade for r in live} >= {"A", "B"}

    def on_heartbeat(self, envelope: Envelope) -> None:
        """The machines' own word on what they cut, for machines running in other processes."""
        machine_id = envelope.payload.get("machineId")
        if isinstance(machine_id, int):
            self.beats[machine_id] = (self.ctx.clock.time(), envelope.payload.get("bladeType"))

    def _watch_outages(self) -> None:
        """Look at open outages every ``check_every`` seconds, only while some are open."""
        if self._watcher is None or self._watcher.done():
            self._watcher = self.ctx.spawn(self._watch_until_resolved(), name="watch")

    async def _watch_until_resolved(self) -> None:
        interval = self.params.check_every
        while self._settled < len(self.outages):
            await self.ctx.clock.sleep(interval)
            await self._watch()

    async def _watch(self) -> None:
        now = self.ctx.clock.time()
        lease = await self._lease() if self.schedulers else None
        covered = self._covered() if self.schedulers else True
        grants: list[Grant] | None = None
        open_outages = [o for o in self.outages[self._settled:] if o.resolved_at is None]
        for outage in open_outages:
            if outage.kind == "scheduler":
                if lease is not None and (outage.epoch is None or lease[1] > outage.epoch):
                    if grants is None:  # only the grants after the oldest open outage's epoch can resolve one
                        after = min((o.epoch or 0) for o in open_outages if o.kind == "scheduler")
                        grants = await self.ctx.tactics.lease_backend().grants(self.params.lease, after=after)
                    outage.resolved_at = _granted_after(outage, grants, now)
                    outage.note = f"epoch {outage.epoch} -> {lease[1]} ({lease[0]})"
            elif outage.kind == "machine" and covered:
                outage.resolved_at = now
        if lease is not None:
            self.leader = lease
        while self._settled < len(self.outages) and self.outages[self._settled].resolved_at is not None:
            self._settled += 1  # everything before this index is resolved: not looked at again

    @subscribe("experiment", types=["pasta.killing_machine", "pasta.killing_scheduler"], shared=False)
    def on_experiment(self, envelope: Envelope) -> None:
        """Someone else's chaos (another process) is noted too."""
        if envelope.source != self.name:
            self.tally.events.append({"at": round(self.ctx.clock.time(), 3), "from": envelope.source,
                                      **envelope.payload})

    # -- views -----------------------------------------------------------------------------
    def _bound(self, outage: Outage, leader_deaths: list[float]) -> float:
        """A machine death while no scheduler leads may take the failover as well.

        ``leader_deaths``: the scheduler outages' times, sorted; a bisection finds whether one lies
        in the window, so checking a day's ~3,000 outages is not a scan of every outage per outage."""
        if outage.kind == "machine":
            first = bisect_left(leader_deaths, outage.at - self.failover_bound)
            if first < len(leader_deaths) and leader_deaths[first] <= outage.at + outage.bound:
                return outage.bound + self.failover_bound
        return outage.bound

    def _late(self, kind: str) -> list[Outage]:
        now = self.ctx.clock.time()
        leader_deaths = sorted(o.at for o in self.outages if o.kind == "scheduler")
        late = []
        for o in self.outages:
            if o.kind != kind:
                continue
            bound = self._bound(o, leader_deaths)
            if (o.took is not None and o.took > bound) or (o.took is None and now - o.at > bound):
                late.append(o)
        return late

    def _times(self, kind: str) -> dict[str, Any]:
        outages = [o for o in self.outages if o.kind == kind]
        took = sorted(o.took for o in outages if o.took is not None)
        if not took:
            return {"count": len(outages)}
        return {"count": len(outages), "resolved": len(took), "max_s": round(took[-1], 2),
                "median_s": round(took[len(took) // 2], 2), "bound_s": outages[0].bound}

    def report(self) -> dict[str, Any]:
        if not self.enabled:
            return {"enabled": False}
        t = self.tally
        steady = None if self.steady_at is None else round(self.steady_at - self.started_at, 2)
        return {"enabled": True, "steady_after_s": steady, "machine_kills": t.machine_kills,
                "scheduler_kills": t.scheduler_kills,
                "leader_kills": t.leader_kills, "restarts": t.restarts, "dead_at_end": sorted(self.dead),
                "rebalance": self._times("machine"), "failover": self._times("scheduler"),
                "latest": t.events[-5:]}

    def checks(self) -> list[Check]:
        if not self.enabled or not self.schedulers:
            return []
        waited = self.ctx.clock.time() - self.started_at
        steady = self.steady_at is not None or waited < self.params.steady_timeout  # a run shorter than the wait
        checks = [Check("steady state (a leader, both blades cut) before the first kill", steady,
                        f"after {self.steady_at - self.started_at:.1f} s" if self.steady_at is not None else
                        f"not yet, the run ended {waited:.0f} s after start" if steady else
                        f"not within {self.params.steady_timeout:.0f} s of start")]
        for kind, name in (("machine", "blades rebalanced after every machine death"),
                           ("scheduler", "a successor leads within the lease bound after every leader death")):
            late = self._late(kind)
            total = sum(1 for o in self.outages if o.kind == kind)
            detail = (f"{total} death(s), all within bound" if not late else
                      f"{len(late)} of {total} late, first: {late[0].name} at {late[0].at:.0f} "
                      f"took {late[0].took if late[0].took is not None else 'forever'} > {late[0].bound}s")
            checks.append(Check(name, not late, detail))
        return checks
