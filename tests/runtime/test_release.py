"""A stopped, crashed or killed component instance releases everything: its subscriptions (at the
transport and its hub too), its tasks, its electors. Counted with the garbage collector, so any
holder left behind — a transport's list, a closure, a supervisor field — fails the test
(issue 11, section 6: 786 of 794 contexts of a 3 h chaos run were dead but still referenced)."""

from __future__ import annotations

import gc
import weakref

from forge_core import ComponentContext
from forge_core.testing import TestPlant
from forge_core.transport.base import Subscription

WORKER_PLUGIN = '''
from forge_core import Component, hookimpl, subscribe


class Worker(Component):
    """Uses everything a component can hold: decorated, fenced and closure subscriptions, a
    periodic task, a long task, an elector."""

    async def start(self):
        self.seen = []
        self.elector = self.ctx.elector("work")
        await self.ctx.subscribe("plant/+/reading", lambda envelope: self.seen.append(envelope.id))
        self.ctx.every(1.0, self.tick)
        self.ctx.spawn(self.forever())

    async def forever(self):
        while True:
            await self.ctx.clock.sleep(3600)

    async def tick(self):
        await self.ctx.publish(f"plant/{self.name}/reading", "test.reading", {"machine": self.name, "value": 0.5})

    @subscribe("plant/+/command", types=["test.command"], shared=False)
    async def on_command(self, envelope):
        if envelope.payload["target"] == self.name and envelope.payload["action"] == "crash":
            self.ctx.spawn(self.crash())

    async def crash(self):
        raise RuntimeError("asked to crash")

    @subscribe("plant/fenced", types=["test.command"], shared=False, fenced="work")
    async def on_fenced(self, envelope):
        self.seen.append(envelope.id)


@hookimpl
def forge_register_components(registry):
    registry.add("test.worker", Worker)
'''

WORKERS = """
version: 1
plant: {name: release}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  worker: {type: test.worker, replicas: 2}
  steady: {type: test.worker}
tactics:
  leader: {use: memory, ttl: 2.0, renew_every: 0.5, retry_every: 0.5}
runtime: {restart: {initial_backoff: 0.1, max_backoff: 0.1, max_restarts: 1000, window: 1.0}}
storage: {migrate_on_start: false}
"""


def live(kind: type) -> list[object]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, kind)]


def contexts_of(prefix: str) -> list[ComponentContext]:
    return [c for c in live(ComponentContext) if c.name.startswith(prefix)]  # type: ignore[attr-defined]


def hub_subscriptions(plant: TestPlant) -> int:
    return len(plant.transport().hub.subs)  # type: ignore[attr-defined]


def test_killed_revived_and_crashed_instances_leave_nothing_behind(plant_dir):
    with TestPlant(plant_dir(WORKERS, plugin=WORKER_PLUGIN)) as plant:
        plant.advance(5)
        assert len(contexts_of("worker")) == 2
        subscriptions, on_hub = len(live(Subscription)), hub_subscriptions(plant)
        first = weakref.ref(plant.runtime.supervisors["worker-0"].context)  # type: ignore[arg-type]
        for cycle in range(20):
            victim = f"worker-{cycle % 2}"
            plant.kill(victim)
            plant.advance(0.5)
            plant.revive(victim)
            plant.advance(1)
        for cycle in range(10):  # crashes: the supervisor tears down and starts a fresh instance
            victim = f"worker-{cycle % 2}"
            plant.publish("plant/x/command", "test.command", {"target": victim, "action": "crash"})
            plant.advance(1)
        assert plant.runtime.supervisors["worker-0"].restarts >= 5
        assert plant.state("worker-0") == plant.state("worker-1") == "running"
        assert first() is None, "a killed instance's context is collected"
        assert len(contexts_of("worker")) == 2, "only the running instances' contexts are alive"
        assert len(live(Subscription)) == subscriptions, "no dead subscription is kept anywhere"
        assert hub_subscriptions(plant) == on_hub
        assert plant.component("worker-0").seen, "the revived instances work"

        plant._run(plant.runtime.supervisors["steady"].stop())
        assert contexts_of("steady") == [], "a stopped instance is collected too"


def test_a_killed_instance_leaves_no_task_running(plant_dir):
    with TestPlant(plant_dir(WORKERS, plugin=WORKER_PLUGIN)) as plant:
        plant.advance(2)
        ctx = plant.runtime.supervisors["worker-0"].context
        assert ctx is not None and ctx._tasks
        tasks = list(ctx._tasks)
        subs = list(ctx._subscriptions)
        plant.kill("worker-0")
        assert all(t.done() for t in tasks), "its every/spawn/elector tasks are cancelled"
        assert not ctx._tasks and not ctx._subscriptions and not ctx._electors
        hub = plant.transport().hub  # type: ignore[attr-defined]
        assert not any(s in hub.subs for s in subs), "its subscriptions are gone from the hub"
        del ctx, tasks, subs
        assert contexts_of("worker-0") == []
