"""The hooks of the built-in plugin ``forge_core.heartbeat``: the ``forge.heartbeat`` emitter and
the ``forge.heartbeat_monitor`` of :mod:`forge_core.builtin.heartbeat`, registered by path so that
loading the plugins imports no component (they load when a plant uses or validates them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from forge_core.errors import ManifestProblem
    from forge_core.manifest.model import Manifest
    from forge_core.registry import ComponentRegistry


@hookimpl
def forge_validate_manifest(manifest: Manifest) -> list[ManifestProblem]:
    """A heartbeat monitor's certificate_sources must compile and capture the beat source."""
    if not any(spec.type == "forge.heartbeat_monitor" for spec in manifest.components.values()):
        return []  # the components' module is not imported for a plant without a monitor
    from forge_core.builtin.heartbeat import validate_manifest

    return validate_manifest(manifest)


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("forge.heartbeat", "forge_core.builtin.heartbeat:HeartbeatEmitter")
    registry.add("forge.heartbeat_monitor", "forge_core.builtin.heartbeat:HeartbeatMonitor")
