"""Loading a plant: plugins first (installed and the plant's local ones), then the manifest
validated against everything they provide; then the plant's scope: only the installed plugins
its manifest lists under ``plugins:`` (with Forge's built-ins and its local plugins) take part in
its hooks, so other plugins' migrations, types, schemas and sections do not apply to it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from forge_core.errors import ManifestError, ManifestProblem
from forge_core.manifest import Manifest, load_manifest, validate_manifest
from forge_core.manifest.loader import read_manifest_text
from forge_core.manifest.yamldoc import parse_yaml
from forge_core.plugins import Plugins, get_plugin_manager


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


def _register_plant_schemas(plugins: Plugins, manifest: Manifest) -> None:
    for path in manifest.schema_paths:
        if path.is_dir():
            plugins.schemas.add_directory(path, plugin=f"plant:{manifest.name}")
        elif path.is_file():
            plugins.schemas.add(path.stem, path, plugin=f"plant:{manifest.name}", origin=str(path))


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
    _register_plant_schemas(plugins, manifest)
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
    plugins.activate(manifest.plugins)
    return plugins.validate_manifest(manifest)
