"""Loading a plant: plugins first (installed and the plant's local ones), then the manifest
validated against everything they provide; then the plant's scope: only the installed plugins
its manifest lists under ``plugins:`` (with Forge's built-ins and its local plugins) take part in
its hooks, so other plugins' migrations, types, schemas and sections do not apply to it."""

from __future__ import annotations

import difflib
import inspect
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forge_core.components import _SUBSCRIBE_ATTR, Component
from forge_core.errors import ForgeError, ManifestError, ManifestProblem
from forge_core.manifest import Manifest, load_manifest, validate_manifest
from forge_core.manifest.loader import read_manifest_text
from forge_core.manifest.yamldoc import parse_yaml
from forge_core.plugins import Plugins, get_plugin_manager
from forge_core.transport.topics import validate_pattern


def manifest_file(path: str | Path) -> Path:
    path = Path(path)
    return path / "plant.yaml" if path.is_dir() else path


def _register_local_plugins(plugins: Plugins, file: Path) -> None:
    """Register the plant's own plugin files before validation, so their types are known.

    Read leniently: a broken manifest is reported in full by the validation that follows.
    """
    try:  # the bounded parser: this read must not hang on what validation will report
        raw = parse_yaml(read_manifest_text(file, str(file)), str(file)).data
    except ManifestError:
        return
    if not isinstance(raw, dict):
        return
    local = raw.get("local_plugins") or []
    if not isinstance(local, list):
        return
    for entry in local:
        if isinstance(entry, str) and (file.parent / entry).is_file():
            plugins.load_local_plugin(file.parent / entry)


def _register_plant_schemas(plugins: Plugins, manifest: Manifest) -> list[ManifestProblem]:
    """Register the plant's own schemas; a broken schema file is a problem of its `schemas:` entry."""
    problems: list[ManifestProblem] = []
    owner = f"plant:{manifest.name}"
    if any(schema.plugin == owner for schema in plugins.schemas):
        return problems  # already registered (checking the next profile on the same plugins)
    for index, path in enumerate(manifest.schema_paths):
        try:
            if path.is_dir():
                plugins.schemas.add_directory(path, plugin=owner)
            elif path.is_file():
                plugins.schemas.add(path.stem, path, plugin=owner, origin=str(path))
        except ForgeError as exc:
            problems.append(ManifestProblem(f"schemas[{index}]", str(exc), str(manifest.path),
                                            manifest.line_of(("schemas", index))))
    return problems


def load_plant(
    path: str | Path,
    *,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    plugins: Plugins | None = None,
) -> tuple[Plugins, Manifest]:
    """Load plugins and the manifest at ``path``; raise ManifestError listing every problem."""
    file = manifest_file(path)
    plugins = plugins or get_plugin_manager()
    _register_local_plugins(plugins, file)
    plugins.check_pending()
    plugins.activate(None)  # the catalog knows every installed plugin, to name the one to list
    manifest = load_manifest(file, env=env if env is not None else os.environ, profile=profile,
                             catalog=plugins.catalog())
    plugins.activate(manifest.plugins)  # from here on the plant sees only its plugins
    plugins.collect()
    problems = plugins.validate_manifest(manifest)
    if problems:
        raise ManifestError(problems)
    problems = _register_plant_schemas(plugins, manifest) or code_problems(plugins, manifest)
    if problems:
        raise ManifestError(problems)
    return plugins, manifest


def check_plant(path: str | Path, *, env: Mapping[str, str] | None = None,
                plugins: Plugins | None = None) -> list[ManifestProblem]:
    """Every problem of the manifest at ``path``, its profiles and its plugins' own checks."""
    file = manifest_file(path)
    plugins = plugins or get_plugin_manager()
    _register_local_plugins(plugins, file)
    plugins.check_pending()
    plugins.activate(None)
    env = env if env is not None else os.environ
    catalog = plugins.catalog()
    problems = validate_manifest(file, env=env, catalog=catalog)
    if problems:
        return problems
    manifest = load_manifest(file, env=env, catalog=catalog)
    found: list[ManifestProblem] = []
    # The plugins' checks and the code checks, for the default and every profile: a profile may
    # list other plugins (other schemas) and bind other types.
    for profile in [manifest.profile, *(p for p in manifest.profiles if p != manifest.profile)]:
        each = load_manifest(file, env=env, catalog=catalog, profile=profile) if profile != manifest.profile \
            else manifest
        plugins.activate(each.plugins)
        plugins.collect()
        problems = plugins.validate_manifest(each)
        problems = problems or _register_plant_schemas(plugins, each) or code_problems(plugins, each)
        tag = f"in profile {profile!r}: " if profile not in (None, manifest.profile) else ""
        found.extend(ManifestProblem(p.path, tag + p.message, p.file, p.line) for p in problems
                     if (p.path, p.message) not in {(f.path, f.message.removeprefix(tag)) for f in found})
    return found


# -- what the code and the manifest name, checked against the registry -----------------------------
#: Param keys whose values are topics or topic patterns: ``topic``, ``topics``, ``*_topic``,
#: ``*_topics`` and everything under them (forge-sched's ``topics: {heartbeats: ...}``).
_TOPIC_KEY = re.compile(r"(^|_)topics?$")


def code_problems(plugins: Plugins, manifest: Manifest) -> list[ManifestProblem]:
    """What validates as YAML but fails at run time: message types named by bindings, routes and
    component classes (``@subscribe(types=...)``, ``publishes``) that no schema registers, and
    topic patterns in ``@subscribe`` and in topic params that no broker accepts."""
    known = sorted(schema.type for schema in plugins.schemas)
    problems: list[ManifestProblem] = []

    def problem(path: tuple[str | int, ...], message: str, at: tuple[str | int, ...] | None = None) -> None:
        line = manifest.line_of(at or path)
        problems.append(ManifestProblem(_dotted(path), message, str(manifest.path), line))

    def unknown_type(type_: str) -> str:
        close = difflib.get_close_matches(type_, known, n=1, cutoff=0.75)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        return (f"unknown message type {type_!r}{guess}: no schema registers it (add schemas/{type_}.json to the "
                f"plant's `schemas:` directories, or list the plugin that owns it under `plugins:`)")

    for index, binding in enumerate(manifest.bindings):
        if binding.type is not None and binding.type not in plugins.schemas:
            problem(("bindings", index, "type"), unknown_type(binding.type))
        for value, type_ in (binding.type_map or {}).items():
            if type_ not in plugins.schemas:
                problem(("bindings", index, "type_map", value), unknown_type(type_), ("bindings", index, "type_map"))
    for index, route in enumerate(manifest.routes):
        for t_index, type_ in enumerate(route.types or []):
            if type_ not in plugins.schemas:
                problem(("routes", index, "types", t_index), unknown_type(type_))

    for name, spec in manifest.components.items():
        try:
            cls = plugins.components.get(spec.type).value
        except ForgeError:  # reported by the manifest checks
            continue
        where = ("components", name, "type")
        if isinstance(cls, type) and issubclass(cls, Component):
            for message in _class_problems(cls, plugins, unknown_type):
                problem(where, f"component type {spec.type!r} ({_located(cls)}): {message}")
        for path, topic in _topic_params(spec.params, ("components", name, "params")):
            try:
                validate_pattern(topic)
            except ValueError as exc:
                problem(path, f"invalid {exc}")
    return problems


def _class_problems(cls: type[Component], plugins: Plugins, unknown_type: Any) -> list[str]:
    found: list[str] = []
    for attr in dir(cls):
        for spec in getattr(getattr(cls, attr, None), _SUBSCRIBE_ATTR, ()):
            try:
                validate_pattern(spec.pattern)
            except ValueError as exc:
                found.append(f"@subscribe on {attr}(): invalid {exc}")
            found.extend(f"@subscribe on {attr}(): {unknown_type(t)}" for t in spec.types or ()
                         if t not in plugins.schemas)
    found.extend(f"publishes: {unknown_type(t)}" for t in cls.published_types()
                 if t not in plugins.schemas)
    # `subscribes` types are not checked: a component may consume types of plugins a plant does not list
    # (forge-sched's order scheduler reads forge-mms's reports), as ctx.subscribe always could
    return found


def _located(cls: type) -> str:
    try:
        file = inspect.getsourcefile(cls)
        line = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return f"class {cls.__qualname__}"
    return f"class {cls.__qualname__} at {file}:{line}"


def _topic_params(value: Any, path: tuple[str | int, ...], under: bool = False) -> list[tuple[Any, str]]:
    if isinstance(value, str):
        return [(path, value)] if under else []
    if isinstance(value, dict):
        return [found for key, item in value.items()
                for found in _topic_params(item, (*path, key), under or bool(_TOPIC_KEY.search(str(key))))]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _topic_params(item, (*path, index), under)]
    return []


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
