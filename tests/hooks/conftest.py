"""Shared by the hook tests: a plugin that records every lifecycle hook call in order."""

from __future__ import annotations

import pytest

from forge_core import hookimpl


class Recorder:
    """A plugin that records every hook call in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    @hookimpl
    def forge_transport_ready(self, name, transport):
        self.calls.append(("forge_transport_ready", name))

    @hookimpl
    def forge_plant_started(self, runtime):
        self.calls.append(("forge_plant_started", sorted(runtime.supervisors)))

    @hookimpl
    def forge_plant_stopping(self, runtime):
        self.calls.append(("forge_plant_stopping", runtime.manifest.name))

    @hookimpl
    def forge_plant_checks(self, summary):
        self.calls.append(("forge_plant_checks", sorted(summary.components)))

    @hookimpl
    def forge_plant_stopped(self, summary):
        self.calls.append(("forge_plant_stopped", summary.stop_reason))

    @hookimpl
    def forge_message_dead_lettered(self, letter):
        self.calls.append(("forge_message_dead_lettered", letter.reason))

    @hookimpl
    def forge_component_crashed(self, name, error, restarts, gave_up):
        self.calls.append(("forge_component_crashed", (name, str(error), restarts, gave_up)))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
