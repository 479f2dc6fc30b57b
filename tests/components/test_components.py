"""Components with tactics: leader election, fenced commands, state handover, kill and revive; batches."""

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


BATCH_PLUGIN = '''
from forge_core import Component, hookimpl, subscribe


class Gateway(Component):
    """Publishes ten readings at once every second."""

    async def start(self):
        self.round = 0
        self.ctx.every(1.0, self.tick)

    async def tick(self):
        self.round += 1
        await self.ctx.publish_batch("readings", "test.order", [{"n": self.round * 100 + i} for i in range(10)],
                                     keys=[f"s{i}" for i in range(10)])


class Collector(Component):
    async def start(self):
        self.batches = []

    @subscribe("readings", batch=True)
    def on_readings(self, envelopes):
        self.batches.append([(e.source, e.key, e.payload["n"]) for e in envelopes])


@hookimpl
def forge_register_components(registry):
    registry.add("test.gateway", Gateway)
    registry.add("test.collector", Collector)


@hookimpl
def forge_register_schemas(registry):
    registry.add("test.order", {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}})
'''

BATCH_MANIFEST = """
version: 1
plant: {name: batches}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  gateway: {type: test.gateway}
  collector: {type: test.collector}
storage: {migrate_on_start: false}
"""


def test_components_publish_batches_and_take_them_in_lists(plant_dir):
    with TestPlant(plant_dir(BATCH_MANIFEST, plugin=BATCH_PLUGIN), seed=1) as plant:
        plant.advance(3.5)
        batches = plant.component("collector").batches
    got = [item for batch in batches for item in batch]
    assert batches and all(isinstance(batch, list) for batch in batches)
    assert [n for _, _, n in got] == [r * 100 + i for r in (1, 2, 3) for i in range(10)]
    assert {source for source, _, _ in got} == {"gateway"} and got[3][1] == "s3"


def test_a_batch_handler_cannot_be_fenced():
    from forge_core.components import subscribe

    with pytest.raises(ValueError, match="batch handler cannot be fenced"):
        subscribe("line/command", batch=True, fenced="line")


# -- runtime hooks cannot be shadowed by accident; an invalid publish is the caller's error (issue 11 §7) --

@pytest.mark.parametrize("name,source,says", [
    ("report", "async def report(self):\n        return {}", "is `async def`"),
    ("checks", "async def checks(self):\n        return []", "is `async def`"),
    ("health", "def health(self, verbose):\n        return {}", "required arguments (verbose)"),
    ("stop", "def stop(self):\n        pass", "is a plain `def`"),
    ("report", "report = {'sent': 0}", "attribute, not a method"),
])
def test_a_runtime_hook_overridden_with_the_wrong_shape_is_refused_at_class_definition(
        name: str, source: str, says: str) -> None:
    from forge_core import Component

    namespace: dict[str, object] = {"Component": Component}
    with pytest.raises(TypeError) as excinfo:
        exec(f"class Bakery(Component):\n    {source}\n", namespace)
    message = str(excinfo.value)
    assert f"Bakery.{name}" in message and says in message and "another name" in message


def test_hooks_overridden_with_the_base_signature_are_fine() -> None:
    from forge_core import Component

    class Fine(Component):
        publishes = ("test.order",)

        async def start(self) -> None: ...

        def report(self) -> dict[str, int]:
            return {"n": 1}

        def checks(self) -> list:  # type: ignore[type-arg]
            return []

        def health(self, detail: bool = False) -> dict[str, bool]:
            return {"ok": True}

    assert Fine.publishes == ("test.order",)


def test_publishes_must_be_a_tuple() -> None:
    from forge_core import Component

    with pytest.raises(TypeError, match=r"publishes = \('test.order',\)"):
        type("Bad", (Component,), {"publishes": "test.order"})


INVALID_PUBLISH_PLUGIN = '''
from forge_core import Component, hookimpl
from forge_core.errors import MessageRejected


class Sender(Component):
    async def start(self):
        self.refused = []
        self.ctx.every(1.0, self.tick)

    async def tick(self):
        try:
            await self.ctx.publish("line/order", "test.order", {"n": "not a number"})
        except MessageRejected as exc:
            self.refused.append(str(exc))


@hookimpl
def forge_register_components(registry):
    registry.add("test.sender", Sender)


@hookimpl
def forge_register_schemas(registry):
    registry.add("test.order", {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}})
'''


def test_an_invalid_publish_is_dead_lettered_with_its_topic_and_transport_and_raised_to_the_caller(plant_dir):
    manifest = """
version: 1
plant: {name: line}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  sender: {type: test.sender}
storage: {migrate_on_start: false}
"""
    with TestPlant(plant_dir(manifest, plugin=INVALID_PUBLISH_PLUGIN), seed=1) as plant:
        plant.advance(3.5)
        sender = plant.component("sender")
        assert len(sender.refused) == 3 and "'line/order'" in sender.refused[0]
        letters = [letter for letter in plant.dead_letters if letter.reason == "invalid"]
        assert len(letters) == 3
        assert {(letter.topic, letter.transport, letter.component) for letter in letters} == {
            ("line/order", "bus", "sender")}
        assert plant.state("sender") == "running" and plant.summary.restarts == {}


ORDERED_PLUGIN = '''
import asyncio
from forge_core import Component, hookimpl, subscribe


class Slow(Component):
    """Its start() takes a while and builds what its handler needs."""

    async def start(self):
        await asyncio.sleep(0.05)  # real time: messages keep arriving meanwhile
        self.seen = []

    @subscribe("plant/ticks", types=["test.reading"])
    def on_tick(self, envelope):
        self.seen.append(envelope.payload["value"])  # AttributeError if called before start() returned


class Ticker(Component):
    async def start(self):
        await self.tick()
        self.ctx.every(0.1, self.tick)

    async def tick(self):
        await self.ctx.publish("plant/ticks", "test.reading", {"machine": "t", "value": 1.0})


@hookimpl
def forge_register_components(registry):
    registry.add("test.slow", Slow)
    registry.add("test.ticker", Ticker)
'''


def test_decorated_handlers_run_only_once_start_has_returned(plant_dir):
    """Issue 11 drill finding: a command queued in a persistent session reached a machine's handler
    before its start() ran (AttributeError, a dead letter, the command lost) - and before start()
    gave the fence its plant key. Decorated handlers are now subscribed after start()."""
    manifest = """
version: 1
plant: {name: ordered}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  slow: {type: test.slow}
  ticker: {type: test.ticker}
storage: {migrate_on_start: false}
"""
    with TestPlant(plant_dir(manifest, plugin=ORDERED_PLUGIN)) as plant:
        plant.advance(1.0)
        assert [d.reason for d in plant.dead_letters] == []
        assert plant.component("slow").seen, "the handler never ran after start()"


# -- ctx.subscribe(group=...): a named consumer group instead of the component's own (issue 14) ------------

GROUP_PLUGIN = BATCH_PLUGIN.replace('''    @subscribe("readings", batch=True)
    def on_readings(self, envelopes):
        self.batches.append([(e.source, e.key, e.payload["n"]) for e in envelopes])
''', '''        group = self.params.get("group")
        await self.ctx.subscribe("readings", self.on_readings, batch=True, **({"group": group} if group else {}))

    def on_readings(self, envelopes):
        self.batches.append([e.payload["n"] for e in envelopes])
''')

GROUP_MANIFEST = """
version: 1
plant: {name: groups}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  gateway: {type: test.gateway}
  left: {type: test.collector, params: {group: processors}}
  right: {type: test.collector, params: {group: processors}}
  audit: {type: test.collector}
storage: {migrate_on_start: false}
"""


def test_subscribers_naming_one_group_share_the_messages_across_components(plant_dir):
    with TestPlant(plant_dir(GROUP_MANIFEST, plugin=GROUP_PLUGIN), seed=1) as plant:
        plant.advance(2.5)
        left, right, audit = ([n for batch in plant.component(name).batches for n in batch]
                              for name in ("left", "right", "audit"))
    assert left and right, "both members of group 'processors' got some"
    assert sorted(left + right) == sorted(audit) == [r * 100 + i for r in (1, 2) for i in range(10)]


def test_a_group_is_shared_and_named():
    import asyncio

    from forge_core.components import ComponentContext

    ctx = ComponentContext(name="p", component="p", replica=0, replicas=1, params=None, bus=None,  # type: ignore[arg-type]
                           clock=None, transport=None, seed=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="with group 'g' is shared"):
        asyncio.run(ctx.subscribe("readings", lambda e: None, group="g", shared=False))
    with pytest.raises(ValueError, match="group name is empty"):
        asyncio.run(ctx.subscribe("readings", lambda e: None, group=" "))
