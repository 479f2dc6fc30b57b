"""``status_reporter.grpc``: registered by forge_sched for a kind forge_mms declares, whichever
plugin registers first; built from the manifest's ``tactics.status_reporter`` by the runtime."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from forge_core import Settings, SettingsError
from forge_core.plugin import TacticRegistry
from forge_core.runtime import Runtime, load_plant
from forge_core.testing import find_free_port
from pydantic import Field

from forge_sched import plugin
from forge_sched.grpc import GrpcStatusReporter
from forge_sched.settings import GrpcStatusReporterSettings


class KindSettings(Settings):
    """What forge_mms's kind may share between implementations (a stand-in)."""

    timeout_budget: float = Field(30.0, gt=0, description="stand-in kind setting")


def declare_kind(registry: TacticRegistry) -> None:
    """forge_mms's side, as the contract has it: the kind, and its in-process implementation."""
    registry.current_plugin = "forge_mms"
    registry.add_kind("status_reporter", settings=KindSettings, default_use="bus")
    registry.add("status_reporter.bus", lambda settings, services: "bus reporter")
    registry.current_plugin = None


def register_sched(registry: TacticRegistry) -> None:
    registry.current_plugin = "forge_sched"
    plugin.forge_register_tactics(registry)
    registry.current_plugin = None


@pytest.mark.parametrize("order", ["kind first", "implementation first"])
def test_a_kind_declared_by_one_plugin_takes_an_implementation_from_another(order: str) -> None:
    registry = TacticRegistry()
    steps = [declare_kind, register_sched] if order == "kind first" else [register_sched, declare_kind]
    for step in steps:
        step(registry)
    assert registry.kinds() == ["status_reporter"]
    assert registry.implementations("status_reporter") == ["bus", "grpc"]
    assert registry.get("status_reporter.grpc").plugin == "forge_sched"
    schema = registry.section_schema("status_reporter")
    assert schema is not None and schema["properties"]["use"]["enum"] == ["bus", "grpc"]
    use, own, impl = registry.split("status_reporter", {"use": "grpc", "target": "pms:50051", "timeout_budget": 9})
    assert (use, own, impl) == ("grpc", {"timeout_budget": 9}, {"target": "pms:50051"})
    entry = registry.get("status_reporter.grpc")
    reporter = entry.value(entry.build_settings(impl, where="tactics.status_reporter"), None)
    assert isinstance(reporter, GrpcStatusReporter) and reporter.target == "pms:50051"
    with pytest.raises(SettingsError, match="tactics.status_reporter.timeout"):
        entry.build_settings({"target": "pms:1", "timeout": -1}, where="tactics.status_reporter")


def test_the_settings_model_is_the_registered_declaration() -> None:
    registry = TacticRegistry()
    register_sched(registry)
    assert registry.get("status_reporter.grpc").settings is GrpcStatusReporterSettings


# -- through the runtime: the manifest picks use: grpc, a component serves the servicer on ctx.grpc
LOCAL_PLUGIN = '''
from forge_core import Component, Settings, hookimpl
from forge_sched.grpc import SERVICE_NAME, FactoryStatusServicer, add_FactoryStatusServiceServicer_to_server
from forge_sched.orders.status import StatusReportResult


class Pms:
    def __init__(self):
        self.calls = []

    async def report_factory_status(self, factory_id, status, reason, epoch, lease):
        self.calls.append((factory_id, status, reason, epoch, lease))
        return StatusReportResult(True, f"{factory_id} {status}", 1)


class FakePms(Component):
    async def start(self):
        self.handler = Pms()
        await self.ctx.grpc.add(add_FactoryStatusServiceServicer_to_server, FactoryStatusServicer(self.handler),
                                SERVICE_NAME)


class NoSettings(Settings):
    pass


@hookimpl(trylast=True)  # after forge_mms, which declares the kind once it exists there
def forge_register_tactics(registry):
    if "status_reporter" not in registry:
        registry.add_kind("status_reporter", settings=NoSettings)


@hookimpl
def forge_register_components(registry):
    registry.add("test.fake_pms", FakePms)
'''

MANIFEST = """
version: 1
plant: {{name: grpc_reporter}}
plugins: [sched, mms]
local_plugins: [pms.py]
transports: {{bus: {{type: memory}}}}
components:
  pms: {{type: test.fake_pms}}
tactics:
  status_reporter: {{use: grpc, target: "127.0.0.1:{port}", timeout: 3}}
runtime: {{health: false, grpc: {{port: {port}}}}}
storage: {{url: "sqlite:///{{plant_dir}}/plant.db", migrate_on_start: false}}
"""


def test_the_runtime_builds_the_reporter_from_the_manifest_and_it_reaches_ctx_grpc(tmp_path) -> None:
    port = find_free_port()
    (tmp_path / "pms.py").write_text(LOCAL_PLUGIN)
    (tmp_path / "plant.yaml").write_text(MANIFEST.format(port=port))
    plugins, manifest = load_plant(tmp_path / "plant.yaml")

    async def scenario() -> tuple[Any, Any]:
        runtime = Runtime(manifest, plugins)
        await runtime.start()
        reporter = None
        try:
            assert runtime.tactics is not None and runtime.grpc is not None
            assert runtime.grpc.target == f"127.0.0.1:{port}"
            reporter = runtime.tactics.get("status_reporter")
            result = await reporter.report("factory-4", "DOWN", "beats stopped", epoch=2, lease="mms")
            calls = runtime.supervisors["pms"].instance.handler.calls
        finally:
            if reporter is not None:
                await reporter.aclose()
            await runtime.stop()
        return result, calls

    result, calls = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert (result.accepted, result.detail, result.orders_moved) == (True, "factory-4 DOWN", 1)
    assert calls == [("factory-4", "DOWN", "beats stopped", 2, "mms")]


def test_an_implementation_from_a_plugin_the_plant_does_not_list_is_refused_at_validate(tmp_path) -> None:
    """The kind is forge_mms's, the grpc implementation forge_sched's: listing only mms is an error
    naming the implementation and the plugin to add, not a plant that fails when it starts."""
    (tmp_path / "pms.py").write_text(LOCAL_PLUGIN)
    text = MANIFEST.format(port=find_free_port()).replace("plugins: [sched, mms]", "plugins: [mms]")
    text = text.replace("  pms: {type: test.fake_pms}\n", "")
    (tmp_path / "plant.yaml").write_text(text.replace("components:\n", "components: {}\n"))
    from forge_core.errors import ManifestError

    with pytest.raises(ManifestError) as refused:
        load_plant(tmp_path / "plant.yaml")
    problems = [(p.path, p.message) for p in refused.value.problems]
    assert problems[0][0] == "tactics.status_reporter.use", problems
    assert "implementation 'grpc' of tactic 'status_reporter' is provided by plugin" in problems[0][1]
    assert "add" in problems[0][1] and "sched" in problems[0][1]
