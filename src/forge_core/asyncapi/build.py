"""The AsyncAPI 3.0 document of a plant (one profile), built from its manifest and code without
running it: servers from the transports, channels from the components' declared flows
(``Component.flows``, :mod:`forge_core.flows`) and the manifest's routes, operations per component
and direction, messages from the registered JSON Schemas."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_core.asyncapi.channels import Channel, message_of, operation_bindings, safe_id, shape
from forge_core.asyncapi.servers import Wire, server_of, wire_of
from forge_core.components import Component
from forge_core.errors import ForgeError
from forge_core.flows import Flow, FlowError
from forge_core.manifest.loader import read_manifest_text
from forge_core.manifest.model import instance_names
from forge_core.manifest.substitute import ENV_REF
from forge_core.plant import load_plant, manifest_file
from forge_core.plugins import Plugins
from forge_core.transport.topics import matches, validate_pattern

VERSION = "3.0.0"


@dataclass
class _Use:
    """One flow of one component, placed on its transport."""

    component: str
    type: str
    instances: list[str]
    flow: Flow
    wire: Wire


def lenient_env(file: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus a ``<NAME>`` stand-in for every ``${env:NAME}`` without a default that is unset:
    a document needs no secrets, and the servers' hosts keep their defaults."""
    out = dict(env)
    for match in ENV_REF.finditer(read_manifest_text(file, str(file))):
        if match.group("default") is None and match.group("name") not in out:
            out[match.group("name")] = f"<{match.group('name')}>"
    return out


def build_document(path: str | Path, *, profile: str | None = None, env: Mapping[str, str] | None = None,
                   plugins: Plugins | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document (a dict) of the plant at ``path`` under ``profile``.

    Raises :class:`~forge_core.errors.ForgeError` naming the file and component for a plant that
    is not there, an unknown profile, or a declaration that does not resolve against its params."""
    file = manifest_file(path)
    if not file.is_file():
        raise ForgeError(f"no plant at {path}: {file} does not exist (give a plant directory or its plant.yaml)")
    plugins, manifest = load_plant(file, profile=profile,
                                   env=lenient_env(file, env if env is not None else os.environ), plugins=plugins)
    wires: dict[str, Wire] = {}
    for name, transport_spec in manifest.transports.items():
        transport_entry = plugins.transports.get(transport_spec.type)
        settings = transport_entry.build_settings(transport_spec.settings, where=f"{file}: transports.{name}.settings")
        wires[name] = wire_of(transport_spec, settings)

    uses: list[_Use] = []
    unplaced: list[dict[str, Any]] = []
    for name, spec in manifest.components.items():
        entry = plugins.components.get(spec.type)
        cls: Any = entry.value
        if not (isinstance(cls, type) and issubclass(cls, Component)):
            continue
        params = entry.build_settings(spec.params, where=f"{file}: components.{name}.params")
        where = f"{file}: components.{name} (type {spec.type}, class {cls.__module__}.{cls.__qualname__})"
        try:
            flows: list[Flow] = cls.flows(params)
        except FlowError as exc:
            raise ForgeError(f"{where}: {exc}") from None
        instances = instance_names(name, spec.replicas)
        for flow in flows:
            transport = flow.transport or spec.transport
            if transport not in wires:
                raise ForgeError(f"{where}: {flow.origin} uses transport {transport!r}, which the manifest does not "
                                 f"declare (transports: {', '.join(wires)})")
            try:
                validate_pattern(flow.topic)
            except ValueError as exc:
                raise ForgeError(f"{where}: {flow.origin}: invalid {exc}") from None
            uses.append(_Use(name, spec.type, instances, flow, wires[transport]))
        sent = {t for flow in flows if flow.action == "send" for t in flow.types}
        # bare type names in `publishes` that no flow places on a topic
        missing = [t for t in cls.publishes if isinstance(t, str) and t not in sent]
        if missing:
            unplaced.append({"component": name, "type": spec.type, "types": missing})
    for index, route in enumerate(manifest.routes):
        for topic in route.topics:
            types = tuple(route.types or ())
            origin = f"routes[{index}]"
            uses.append(_Use(origin, "forge.route", [origin], Flow("receive", topic, types, origin=origin),
                             wires[route.source]))
            uses.append(_Use(origin, "forge.route", [origin], Flow("send", topic, types, origin=origin),
                             wires[route.target]))
    return _document(manifest.name, manifest.description, manifest.profile, plugins, wires, uses, unplaced)


def _document(plant: str, description: str, profile: str | None, plugins: Plugins, wires: dict[str, Wire],
              uses: list[_Use], unplaced: list[dict[str, Any]]) -> dict[str, Any]:
    from forge_core import __version__

    channels: dict[tuple[str, tuple[str, ...]], Channel] = {}
    for use in uses:
        key = (use.wire.name, shape(use.flow.topic))
        channel = channels.setdefault(key, Channel("", use.wire, key[1]))
        channel.learn(use.flow.topic)
    # Message types of each channel: what its flows name; a receive without types gets what is sent
    # on the transport's topics it matches.
    for use in uses:
        channel = channels[(use.wire.name, shape(use.flow.topic))]
        for type_ in use.flow.types:
            if channel.types.get(type_) is None:
                channel.types[type_] = use.flow.key
    for use in uses:
        if use.flow.action == "receive" and not use.flow.types:
            channel = channels[(use.wire.name, shape(use.flow.topic))]
            for other in uses:
                if other.flow.action == "send" and other.wire is use.wire and matches(use.flow.topic, other.flow.topic):
                    for type_ in other.flow.types:
                        channel.types.setdefault(type_, other.flow.key)
    taken: set[str] = set()
    for (transport, _), channel in sorted(channels.items()):
        channel.id = _unique(safe_id(f"{transport}/{channel.address()}"), taken)

    servers = {name: server for name, wire in wires.items() if (server := server_of(wire)) is not None}
    schemas = {s.type: s for s in plugins.schemas}
    doc_channels: dict[str, Any] = {}
    for channel in sorted(channels.values(), key=lambda c: c.id):
        messages = {safe_id(t): message_of(schemas.get(t), t, channel.wire, key)
                    for t, key in sorted(channel.types.items())}
        ref = f"#/servers/{channel.wire.name}" if channel.wire.name in servers else None
        doc_channels[channel.id] = channel.document(ref, messages)

    operations: dict[str, Any] = {}
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for use in uses:
        flow = use.flow
        channel = channels[(use.wire.name, shape(flow.topic))]
        types = flow.types or tuple(channel.types)
        refs = [{"$ref": f"#/channels/{channel.id}/messages/{safe_id(t)}"} for t in types]
        op = merged.get((use.component, flow.action, channel.id))
        if op is None:
            verb = "publishes on" if flow.action == "send" else "subscribes to"
            op = {"action": flow.action, "channel": {"$ref": f"#/channels/{channel.id}"},
                  "summary": f"{use.component} ({use.type}) {verb} {flow.topic}", "messages": [],
                  "x-forge-component": use.component, "x-forge-instances": use.instances,
                  "x-forge-declared": []}
            if flow.description:
                op["description"] = flow.description
            merged[(use.component, flow.action, channel.id)] = op
            operations[_unique(safe_id(f"{use.component}.{flow.action}.{channel.id}"), set(operations))] = op
        op["messages"].extend(r for r in refs if r not in op["messages"])
        op["x-forge-declared"].append(flow.origin)
        groups = _groups(use, plant) if flow.action == "receive" else []
        bindings = operation_bindings(use.wire, flow.topic, flow.action, groups)
        if bindings is not None and "bindings" not in op:
            op["bindings"] = bindings
    for op in operations.values():
        if not op["messages"]:
            del op["messages"]  # a subscription no declared publisher feeds: any message

    info: dict[str, Any] = {
        "title": plant,
        "version": __version__,
        "description": (description or f"Plant {plant}") + f"\n\nProfile: {profile or 'none'}. Generated by "
                       f"`forge asyncapi` (forge-core {__version__}) from the manifest and the components' "
                       "declared flows.",
    }
    doc: dict[str, Any] = {"asyncapi": VERSION, "info": info, "defaultContentType": "application/json"}
    if servers:
        doc["servers"] = servers
    doc["channels"] = doc_channels
    doc["operations"] = operations
    doc["x-forge-profile"] = profile
    if unplaced:
        doc["x-forge-unplaced"] = unplaced  # types a class publishes without saying on which topic
    return doc


def _groups(use: _Use, plant: str) -> list[str]:
    """Kafka consumer group ids of a receive: ``group_template`` filled as the transport fills it."""
    template = use.wire.get("group_template")
    if not isinstance(template, str):
        return []
    flow = use.flow
    shared = flow.group or (use.component if flow.shared and len(use.instances) > 1 else None)
    owners = [shared] if shared else use.instances
    try:
        return [template.format(plant=plant, group=owner, pattern=flow.topic) for owner in owners]
    except (KeyError, IndexError, ValueError):
        return []


def _unique(name: str, taken: set[str]) -> str:
    out, n = name, 2
    while out in taken:
        out, n = f"{name}_{n}", n + 1
    taken.add(out)
    return out
