"""Components with the leader tactic: one leader commands, fenced commands, state handover to the
shadow after a kill, a clean stop releasing the lease, kill and revive, leadership announcements."""

from __future__ import annotations

import pytest

from forge_core.tactics.leader import NotLeader
from forge_core.testing import TestPlant

PLUGIN = '''
from forge_core import Component, hookimpl, subscribe
from forge_core.tactics.leader import NotLeader


class Scheduler(Component):
    """Issues a numbered command every 0.5 s while it leads; persists its counter."""

    async def start(self):
        self.store = self.ctx.tactics.state_store("scheduler")
        self.counter = 0
        self.sent = []
        self.elector = self.ctx.elector("line", on_elected=self.elected)
        self.ctx.every(0.5, self.tick)

    async def elected(self, epoch):
        saved = await self.store.load("counter")
        self.counter = saved["n"] if saved else 0

    async def tick(self):
        if not self.elector.is_leader:
            return
        self.counter += 1
        await self.ctx.publish_fenced(self.elector, "line/command", "test.order", {"n": self.counter})
        self.sent.append((self.elector.epoch, self.counter))
        await self.store.save("counter", {"n": self.counter}, epoch=self.elector.epoch)


class Machine(Component):
    async def start(self):
        self.applied = []

    @subscribe("line/command", fenced="line")
    def on_command(self, envelope):
        self.applied.append((int(envelope.headers["forgeepoch"]), envelope.source, envelope.payload["n"]))


@hookimpl
def forge_register_components(registry):
    registry.add("test.scheduler", Scheduler)
    registry.add("test.line_machine", Machine)


@hookimpl
def forge_register_schemas(registry):
    registry.add("test.order", {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}})
'''


MANIFEST = """
version: 1
plant: {name: line}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  active: {type: test.scheduler}
  shadow: {type: test.scheduler}
  machine: {type: test.line_machine}
tactics:
  leader: {use: memory, ttl: 1.0, renew_every: 0.3, retry_every: 0.2}
storage: {migrate_on_start: false}
"""


def test_one_leader_commands_and_the_shadow_takes_over_after_a_kill(plant_dir):
    with TestPlant(plant_dir(MANIFEST, plugin=PLUGIN), seed=1) as plant:
        plant.advance(5)
        active, shadow = plant.component("active"), plant.component("shadow")
        leader, follower = (active, shadow) if active.elector.is_leader else (shadow, active)
        assert leader.sent and not follower.sent, "only the leader sends commands"
        plant.kill(leader.name)
        killed_at = plant.now
        took_over = plant.run_until(lambda: bool(follower.sent), timeout=5, step=0.05)
        assert took_over <= 1.2 + 0.5 + 0.05, "successor's first command within ttl + retry + one tick"
        applied = plant.component("machine").applied
        epochs = [epoch for epoch, _, _ in applied]
        assert epochs == sorted(epochs) and epochs[-1] == epochs[0] + 1
        numbers = [n for _, _, n in applied]
        assert numbers == list(range(1, len(numbers) + 1)), "the successor resumed from the persisted counter"
        assert killed_at < plant.now


def test_a_deposed_leaders_late_command_is_dropped_and_counted(plant_dir):
    with TestPlant(plant_dir(MANIFEST, plugin=PLUGIN), seed=1) as plant:
        plant.advance(3)
        machine = plant.component("machine")
        newest = machine.applied[-1][0]
        plant.publish("line/command", "test.order", {"n": 999},
                      headers={"forgeepoch": str(newest - 1), "forgelease": "line"})
        plant.publish("line/command", "test.order", {"n": 998})
        plant.publish("line/command", "test.order", {"n": 997}, headers={"forgeepoch": "99", "forgelease": "other"})
        assert all(n < 997 for _, _, n in machine.applied)
        ctx = machine.ctx
        assert ctx.fence.rejected == 1 and ctx.unfenced_rejected == 2


def test_publish_fenced_refuses_when_not_leading(plant_dir):
    with TestPlant(plant_dir(MANIFEST, plugin=PLUGIN), seed=1) as plant:
        plant.advance(2)
        follower = next(c for c in (plant.component("active"), plant.component("shadow"))
                        if not c.elector.is_leader)
        with pytest.raises(NotLeader, match="does not hold lease 'line'"):
            plant._run(follower.ctx.publish_fenced(follower.elector, "line/command", "test.order", {"n": 1}))


def test_clean_stop_releases_the_lease_so_the_successor_leads_at_once(plant_dir):
    with TestPlant(plant_dir(MANIFEST, plugin=PLUGIN), seed=1) as plant:
        plant.advance(2)
        leader = next(c for c in (plant.component("active"), plant.component("shadow")) if c.elector.is_leader)
        other = "shadow" if leader.name == "active" else "active"
        plant._run(plant.runtime.supervisors[leader.name].stop())
        waited = plant.run_until(lambda: plant.component(other).elector.is_leader, timeout=2, step=0.01)
        assert waited <= 0.2 + 0.01, "released, so the next campaign (retry_every) wins"


def test_killed_component_revives_as_a_follower(plant_dir):
    with TestPlant(plant_dir(MANIFEST, plugin=PLUGIN), seed=1) as plant:
        plant.advance(2)
        leader = next(n for n in ("active", "shadow") if plant.component(n).elector.is_leader)
        plant.kill(leader)
        assert plant.state(leader) == "killed"
        with pytest.raises(KeyError):
            plant.component(leader)
        plant.advance(3)
        plant.revive(leader)
        plant.advance(2)
        assert plant.state(leader) == "running"
        assert not plant.component(leader).elector.is_leader


def test_leadership_changes_are_published_for_watchers(plant_dir):
    with TestPlant(plant_dir(MANIFEST, plugin=PLUGIN), seed=1) as plant:
        plant.advance(2)
        (first,) = plant.sent("forge/leader/line", type="forge.leadership")
        assert first.payload["leading"] is True and first.payload["epoch"] == 1
        plant.kill(first.payload["holder"])
        second = plant.expect("forge.leadership", within=3)
        assert second.payload["epoch"] == 2 and second.payload["holder"] != first.payload["holder"]
        assert second.payload["leading"] is True
