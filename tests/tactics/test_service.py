"""Tactics configured from the manifest (forge_core.tactics.service) and their registration."""

from __future__ import annotations

import pytest

from forge_core import hookimpl
from forge_core.clock import RealClock, VirtualClock
from forge_core.errors import ManifestError, SettingsError
from forge_core.plugins import get_plugin_manager
from forge_core.tactics.detectors import FixedTimeoutDetector, PhiAccrualDetector
from forge_core.tactics.leader import MemoryLeaseBackend, SqlLeaseBackend
from forge_core.tactics.service import TacticConfigError, Tactics, TacticServices
from forge_core.testing import TestPlant


def tactics(settings, *, clock=None, storage=None, plugins=None, tmp_path=None) -> Tactics:
    plugins = plugins or get_plugin_manager(autoload=False)
    plugins.collect()
    services = TacticServices(clock or VirtualClock(), storage or (lambda: None), 1, "p", tmp_path or ".")
    return Tactics(plugins.tactics, settings, services)


def test_defaults_and_manifest_values_merge():
    t = tactics({"leader": {"ttl": 5.0, "renew_every": 3.0}})
    assert t.settings("leader").ttl == 5.0 and t.settings("leader").retry_every == 0.2
    assert t.settings("leader").ttl == 5.0, "a typed settings object"
    assert t.settings("backpressure").as_dict() == {"high": 1000, "low": 500, "fast_interval": 0.25,
                                                    "slow_interval": 2.0, "settle": 5.0}
    elector = t.elector("scheduler", "a")
    assert (elector.ttl, elector.renew_every) == (5.0, 3.0)
    assert isinstance(t.lease_backend(), MemoryLeaseBackend) and t.lease_backend() is t.lease_backend()


def test_electors_share_the_manifests_settings_and_overrides_stay_their_own():
    """The kind's settings are built once per runtime for electors, monitors and retries (they only
    read them); an override applies to its own call and does not leak into the shared ones."""
    t = tactics({"leader": {"ttl": 5.0}, "retry": {"max_attempts": 4}})
    first = t.elector("a", "x", ttl=9.0)
    second, third = t.elector("b", "x"), t.elector("c", "x")
    assert (first.ttl, second.ttl, third.ttl) == (9.0, 5.0, 5.0)
    assert t.elector("d", "x", retry_every=0.5).retry_every == 0.5 and t.elector("e", "x").retry_every == 0.2
    assert t.retry(max_attempts=2).max_attempts == 2 and t.retry().max_attempts == 4
    assert t.settings("leader") is not t.settings("leader"), "settings() still gives the caller its own"


def test_detector_choice_and_its_settings():
    assert isinstance(tactics({}).detector(1.0), PhiAccrualDetector)
    detector = tactics({"detector": {"use": "timeout", "timeout_intervals": 3}}).detector(5.0)
    assert isinstance(detector, FixedTimeoutDetector) and detector.timeout == 15.0


def test_unknown_implementation_lists_the_available_ones():
    with pytest.raises(TacticConfigError, match=r"tactics.leader.use: no implementation 'etcd' is registered; "
                                                 r"available: memory, redis, sql"):
        tactics({"leader": {"use": "etcd"}}).lease_backend()


def test_implementation_settings_are_validated():
    with pytest.raises(SettingsError, match=r"tactics.leader.url: required key is missing"):
        tactics({"leader": {"use": "redis"}}, clock=RealClock()).lease_backend()
    with pytest.raises(SettingsError, match=r"tactics.leader.prefx: unknown key"):
        tactics({"leader": {"use": "redis", "url": "redis://x", "prefx": "a"}}, clock=RealClock()).lease_backend()


def test_kind_settings_are_validated_and_overrides_too():
    with pytest.raises(SettingsError, match=r"tactics.backpressure.high: Input should be greater than or equal to 1"):
        tactics({"backpressure": {"high": 0}}).backpressure()
    with pytest.raises(SettingsError, match=r"tactics.retry.max_attempts"):
        tactics({}).retry(max_attempts=0)


def test_redis_lease_is_refused_under_virtual_time():
    with pytest.raises(TacticConfigError, match="Redis's real time"):
        tactics({"leader": {"use": "redis", "url": "redis://127.0.0.1:1/0"}}).lease_backend()


def test_a_plugin_adds_a_backend_by_registering_kind_dot_name():
    class Etcd:
        @hookimpl
        def forge_register_tactics(self, registry):
            registry.add("leader.etcd", lambda settings, services: ("etcd", settings["endpoint"]),
                         settings_schema={"type": "object", "required": ["endpoint"],
                                          "properties": {"endpoint": {"type": "string"}}})

    plugins = get_plugin_manager(autoload=False, extra=[("etcd", Etcd())])
    backend = tactics({"leader": {"use": "etcd", "endpoint": "http://x"}}, plugins=plugins).lease_backend()
    assert backend == ("etcd", "http://x")


def test_sql_lease_and_state_use_the_plant_storage(plant_dir):
    manifest = """
    version: 1
    plant: {name: sql}
    transports: {bus: {type: memory}}
    components: {}
    tactics:
      leader: {use: sql}
      state: {use: sql}
    storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: true}
    """
    with TestPlant(plant_dir(manifest)) as plant:
        t = plant.runtime.tactics
        assert isinstance(t.lease_backend(), SqlLeaseBackend)
        store = t.state_store("scheduler")
        plant._run(store.save("machines", {"m1": "A"}, epoch=3))
        assert plant._run(t.state_store("scheduler").load("machines")) == {"m1": "A"}


def test_unknown_tactic_kind_in_the_manifest_is_reported_with_its_line(plant_dir):
    manifest = """
    version: 1
    plant: {name: typo}
    transports: {bus: {type: memory}}
    tactics:
      leadr: {ttl: 2}
    storage: {migrate_on_start: false}
    """
    with pytest.raises(ManifestError) as caught:
        TestPlant(plant_dir(manifest))
    (problem,) = caught.value.problems
    assert problem.path == "tactics.leadr" and problem.line == 6


def test_retries_are_counted_and_marked_on_the_current_span():
    from forge_core.telemetry import Telemetry

    telemetry = Telemetry.from_settings(traces_exporter="memory", metrics_exporter="none", service_name="t")
    clock = VirtualClock()
    services = TacticServices(clock, lambda: None, 1, "p", ".", telemetry)
    plugins = get_plugin_manager(autoload=False)
    plugins.collect()
    policy = Tactics(plugins.tactics, {"retry": {"max_attempts": 3, "jitter": 0.0}}, services).retry(name="erp")
    calls = []

    async def flaky():
        calls.append(clock.monotonic())
        if len(calls) < 3:
            raise ConnectionError("erp down")
        return "ok"

    async def main():
        with telemetry.tracer.start_as_current_span("sync orders"):
            return await policy.acall(flaky)

    assert clock.run(main()) == "ok"
    assert calls == pytest.approx([0.0, 0.1, 0.3])
    assert policy.stats.retries == 2
    telemetry.force_flush()
    (span,) = telemetry.span_exporter.get_finished_spans()
    assert [(e.name, e.attributes["forge.retry.count"]) for e in span.events] == [("retry", 1), ("retry", 2)]
    clock.close()
    telemetry.shutdown()


def test_sql_state_with_an_in_memory_leader_is_refused_before_a_run(plant_dir):
    manifest = """
    version: 1
    plant: {name: epochs}
    transports: {bus: {type: memory}}
    tactics:
      leader: {use: memory}
      state: {use: sql}
    storage: {migrate_on_start: false}
    """
    with pytest.raises(ManifestError) as caught:
        TestPlant(plant_dir(manifest))
    (problem,) = caught.value.problems
    assert problem.path == "tactics.state.use" and problem.line == 7
    assert "restarts epochs at 1 in every process" in problem.message


# -- a brand-new tactic kind from a plugin, with no edit to core -----------------------------------
QUOTA_PLUGIN = '''
from pydantic import Field

from forge_core import Component, Settings, hookimpl


class QuotaSettings(Settings):
    window: float = Field(10.0, gt=0, description="seconds over which the quota counts")


class TokenBucketSettings(Settings):
    capacity: int = Field(3, ge=1, description="calls allowed per window")


class FixedSettings(Settings):
    allowed: int = Field(1, ge=0)


class TokenBucket:
    def __init__(self, capacity, window, clock):
        self.capacity, self.window, self.clock, self.used = capacity, window, clock, []

    def allow(self):
        now = self.clock.monotonic()
        self.used = [t for t in self.used if now - t < self.window]
        if len(self.used) < self.capacity:
            self.used.append(now)
            return True
        return False


def token_bucket(settings, services):
    return TokenBucket(settings.capacity, services.kind_settings.window, services.clock)


class Caller(Component):
    async def start(self):
        self.quota = self.ctx.tactics.get("quota")
        self.granted = 0
        self.ctx.every(1.0, self.call)

    def call(self):
        self.granted += self.quota.allow()


@hookimpl
def forge_register_tactics(registry):
    registry.add_kind("quota", settings=QuotaSettings, default_use="token_bucket")
    registry.add("quota.token_bucket", token_bucket, settings=TokenBucketSettings)
    registry.add("quota.fixed", lambda settings, services: settings, settings=FixedSettings)


@hookimpl
def forge_register_components(registry):
    registry.add("test.caller", Caller)
'''

QUOTA_PLANT = """
version: 1
plant: {name: quota}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  caller: {type: test.caller}
tactics:
  quota: QUOTA
storage: {migrate_on_start: false}
"""


def test_a_plugin_registers_a_new_tactic_kind_and_a_component_uses_it(plant_dir):
    manifest = QUOTA_PLANT.replace("QUOTA", "{window: 5.0, capacity: 2}")
    with TestPlant(plant_dir(manifest, plugin=QUOTA_PLUGIN)) as plant:
        plant.advance(10)
        caller = plant.component("caller")
        assert (caller.quota.capacity, caller.quota.window) == (2, 5.0), "kind and implementation settings"
        assert caller.granted == 2 + 2, "two per 5 s window"
        assert "quota" in plant.runtime.tactics.kinds()


def test_a_new_tactic_kind_defaults_come_from_its_declaration(plant_dir):
    with TestPlant(plant_dir(QUOTA_PLANT.replace("QUOTA", "{}"), plugin=QUOTA_PLUGIN)) as plant:
        quota = plant.component("caller").quota
        assert (quota.capacity, quota.window) == (3, 10.0)


@pytest.mark.parametrize(("section", "path", "says"), [
    ("{capacty: 2}", "tactics.quota.capacty", "unknown key 'capacty' (did you mean 'capacity'?)"),
    ("{windw: 2}", "tactics.quota.windw", "unknown key 'windw' (did you mean 'window'?)"),
    ("{use: fixed, capacity: 2}", "tactics.quota.capacity",
     "unknown key 'capacity': a setting of another implementation of quota, not of use: fixed"),
    ("{use: leaky}", "tactics.quota.use", "'leaky' is not one of 'fixed', 'token_bucket'"),
    ("{window: 0}", "tactics.quota.window", "0 is less than or equal to the minimum of 0"),
    ("{use: fixed, allowed: -1}", "tactics.quota.allowed", "-1 is less than the minimum of 0"),
])
def test_a_new_tactic_kinds_manifest_section_is_checked_at_validate(plant_dir, section, path, says):
    from forge_core.plant import check_plant

    directory = plant_dir(QUOTA_PLANT.replace("QUOTA", section), plugin=QUOTA_PLUGIN)
    problems = check_plant(directory, plugins=get_plugin_manager(autoload=False))
    assert [(p.path, p.line) for p in problems] == [(path, 9)], problems
    assert says in problems[0].message


def test_aclose_closes_what_was_built_once_per_runtime_and_survives_a_failing_close():
    import asyncio
    from pathlib import Path

    class Closable:
        def __init__(self, fail: bool = False) -> None:
            self.closed, self.fail = False, fail

        async def aclose(self) -> None:
            self.closed = True
            if self.fail:
                raise OSError("channel already gone")

    plugins = get_plugin_manager(autoload=False)
    plugins.collect()
    tactics = Tactics(plugins.tactics, {}, TacticServices(VirtualClock(), lambda: None, 1, "p", Path(".")))  # type: ignore[arg-type]
    first, broken, sync = Closable(), Closable(fail=True), type("S", (), {"close": lambda self: calls.append(1)})()
    calls: list[int] = []
    for key, built in (("a", first), ("b", broken), ("c", sync)):
        tactics.shared(key, lambda built=built: built)
    asyncio.run(tactics.aclose())
    assert first.closed and broken.closed and calls == [1]
    assert tactics.shared("a", lambda: "new") == "new"  # cleared: a later run builds afresh
