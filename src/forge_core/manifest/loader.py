"""Load a plant manifest: parse, apply a profile, substitute secrets, check everything, type it.

Nothing is raised until every check has run, so ``forge validate`` and ``forge run`` show the
whole list of problems, each with the file, line and dotted path where it is.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_core.errors import ManifestError, ManifestProblem
from forge_core.manifest.metrics import MetricsSettings
from forge_core.manifest.model import (
    DEFAULT_PROFILE,
    DEFAULT_STORAGE_URL,
    BindingSpec,
    Catalog,
    ComponentSpec,
    DocPath,
    Issue,
    Manifest,
    RouteSpec,
    RuntimeSpec,
    StorageSpec,
    TelemetrySpec,
    TransportSpec,
)
from forge_core.manifest.ports import expand_ports
from forge_core.manifest.substitute import secret_issues, substitute
from forge_core.manifest.validate import (
    catalog_issues,
    dotted,
    number_issues,
    profile_keys,
    schema_issues,
    structure_issues,
)
from forge_core.manifest.yamldoc import MAX_MANIFEST_BYTES, YamlDoc, parse_yaml

MANIFEST_FILE = "plant.yaml"


def load_manifest(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    profile: str | None = None,
    catalog: Catalog | None = None,
) -> Manifest:
    """Load and check the manifest at ``path`` (a plant directory or the YAML file itself).

    ``profile=None`` applies ``embedded`` when the manifest defines it. ``env`` defaults to
    ``os.environ``. Without a ``catalog`` only the schema and structural checks run.
    Raises :class:`ManifestError` listing every problem, sorted by line.
    """
    source = _Source.open(path)
    ydoc = source.parse()
    base = _require_mapping(ydoc, source)
    defined = _profile_names(base)
    problems = [source.problem(issue, issue.line) for issue in ydoc.issues]
    if profile is None:
        profile = DEFAULT_PROFILE if DEFAULT_PROFILE in defined else None
    elif profile not in defined:
        where: DocPath = ("profiles",) if ("profiles",) in ydoc.lines else ()
        listing = f"defined profiles: {', '.join(defined)}" if defined else "the manifest defines none"
        problems.append(source.problem(Issue(where, f"unknown profile {profile!r}; {listing}"),
                                       ydoc.lines.get(where)))
        profile = None
    checked = _check(base, ydoc, profile, source, env, catalog)
    for issue, line, from_profile in checked.issues:
        if from_profile:
            issue = Issue(issue.path, f"in profile {profile!r}: {issue.message}")
        problems.append(source.problem(issue, line))
    problems = _sorted_unique(problems)
    if problems:
        raise ManifestError(problems)
    return _build(checked.doc, checked.lines, source, profile, defined)


def validate_manifest(
    path: str | Path, *, env: Mapping[str, str] | None = None, catalog: Catalog | None = None
) -> list[ManifestProblem]:
    """Every problem of the manifest: the base document and each profile merged over it.

    Returns an empty list for a good manifest; never raises for a manifest problem.
    """
    try:
        source = _Source.open(path)
        ydoc = source.parse()
        base = _require_mapping(ydoc, source)
    except ManifestError as exc:
        return list(exc.problems)
    problems = [source.problem(issue, issue.line) for issue in ydoc.issues]
    seen = set()
    for issue, line, _ in _check(base, ydoc, None, source, env, catalog).issues:
        seen.add((issue.path, issue.message, line))
        problems.append(source.problem(issue, line))
    for name in _profile_names(base):
        for issue, line, _ in _check(base, ydoc, name, source, env, catalog).issues:
            if (issue.path, issue.message, line) not in seen:  # a base problem is reported once
                tagged = Issue(issue.path, f"in profile {name!r}: {issue.message}")
                problems.append(source.problem(tagged, line))
    return _sorted_unique(problems)


# ---------------------------------------------------------------------------------------------


@dataclass
class _Source:
    file: Path  # absolute
    shown: str  # as the user named it, for messages
    plant_dir: Path

    @classmethod
    def open(cls, path: str | Path) -> _Source:
        given = Path(path)
        if given.is_dir():
            given = given / MANIFEST_FILE
        if not given.is_file():
            raise ManifestError([ManifestProblem("", f"no manifest file at {given}", str(given))])
        file = given.resolve()
        return cls(file, str(given), file.parent)

    def parse(self) -> YamlDoc:
        return parse_yaml(read_manifest_text(self.file, self.shown), self.shown)

    def problem(self, issue: Issue, line: int | None) -> ManifestProblem:
        return ManifestProblem(dotted(issue.path), issue.message, self.shown, line)


def read_manifest_text(file: Path, shown: str) -> str:
    """The manifest's text: at most :data:`MAX_MANIFEST_BYTES`, UTF-8; else a problem naming the
    file (and, for a bad byte, its line) instead of a traceback."""
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestError([ManifestProblem("", f"cannot read the manifest: {exc}", shown)]) from exc
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError([ManifestProblem(
            "", f"the manifest is larger than the limit of {MAX_MANIFEST_BYTES:,} bytes; a plant manifest is a "
                "few KB (keep data in files the plant reads, not in plant.yaml)", shown)])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ManifestError([ManifestProblem(
            "", f"the manifest is not UTF-8: byte 0x{data[exc.start]:02x} at column {column} cannot be decoded; "
                "save the file as UTF-8", shown, line)]) from None


def _require_mapping(ydoc: YamlDoc, source: _Source) -> dict[str, Any]:
    if not isinstance(ydoc.data, dict):
        what = "empty" if ydoc.data is None else f"a {type(ydoc.data).__name__}, not a mapping"
        raise ManifestError([ManifestProblem("", f"the manifest is {what}; it starts with `version: 1`",
                                             source.shown, ydoc.lines.get((), 1))])
    return ydoc.data


def _profile_names(base: dict[str, Any]) -> list[str]:
    profiles = base.get("profiles")
    return [str(name) for name in profiles] if isinstance(profiles, dict) else []


@dataclass
class _Checked:
    doc: dict[str, Any]  # merged and substituted, without `profiles`
    lines: dict[DocPath, int]
    # (issue, its line, whether that line is in the applied profile's section)
    issues: list[tuple[Issue, int | None, bool]] = field(default_factory=list)


def _check(
    base: dict[str, Any],
    ydoc: YamlDoc,
    profile: str | None,
    source: _Source,
    env: Mapping[str, str] | None,
    catalog: Catalog | None,
) -> _Checked:
    """Run every check on the base merged with ``profile``; issues come back with their lines."""
    doc, lines = base, dict(ydoc.lines)
    profile_paths: set[DocPath] = set()
    if profile is not None:
        overlay = base["profiles"][profile]
        if isinstance(overlay, dict):
            # Unknown keys in a profile are reported by the schema on `profiles`; skip them here.
            overlay = {k: v for k, v in overlay.items() if k in profile_keys()}
            doc, lines, profile_paths = _merge_with_lines(base, overlay, ydoc.lines, ("profiles", profile))

    issues = secret_issues(doc)
    body = {k: v for k, v in doc.items() if k != "profiles"}  # other profiles keep their own env needs
    body, env_issues = substitute(body, env=os.environ if env is None else env, plant_dir=source.plant_dir)
    issues += env_issues
    checked_doc = {**body, "profiles": doc["profiles"]} if "profiles" in doc else body
    checks = schema_issues(checked_doc) + number_issues(body) + structure_issues(body, source.plant_dir)
    if catalog is not None:
        checks += catalog_issues(body, catalog)
    unset = {issue.path for issue in env_issues}
    # a value an unset variable left empty: its own problem says so; "expected ..., got ''" is noise
    issues += [i for i in checks if not any(i.path[:len(u)] == u for u in unset)]

    result = _Checked(body, lines)
    for issue in issues:
        line, in_profile = _line_for(issue.path, lines, profile_paths)
        result.issues.append((issue, line, in_profile))
    return result


def _line_for(
    path: DocPath, lines: dict[DocPath, int], profile_paths: set[DocPath]
) -> tuple[int | None, bool]:
    """The line of ``path`` or of its nearest written ancestor (a missing key -> its parent)."""
    for depth in range(len(path), -1, -1):
        prefix = path[:depth]
        if prefix in lines:
            return lines[prefix], prefix in profile_paths
    return None, False


def _merge_with_lines(
    base: dict[str, Any], overlay: dict[str, Any], base_lines: dict[DocPath, int], overlay_at: DocPath
) -> tuple[dict[str, Any], dict[DocPath, int], set[DocPath]]:
    """Deep-merge ``overlay`` over ``base`` and the line maps with it.

    Mappings merge key by key; lists and scalars replace; ``None`` deletes the key. A path the
    overlay wrote takes the overlay's line, and whatever it replaced or deleted loses its base
    lines, so a problem under a replaced list never points at the list it replaced.
    """
    depth = len(overlay_at)
    written: dict[DocPath, int] = {
        p[depth:]: line for p, line in base_lines.items()
        if p[:depth] == overlay_at and len(p) > depth and p[depth] in overlay
    }
    replaced: list[DocPath] = []

    def merge(into: dict[str, Any], over: dict[str, Any], path: DocPath) -> dict[str, Any]:
        out = dict(into)
        for key, value in over.items():
            here = (*path, key)
            if value is None:
                out.pop(key, None)
                replaced.append(here)
            elif isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value, here)
            else:
                out[key] = copy.deepcopy(value)
                replaced.append(here)
        return out

    merged = merge(base, overlay, ())
    lines = {
        p: line for p, line in base_lines.items()
        if not any(p[: len(r)] == r for r in replaced)
    }
    lines.update(written)
    return merged, lines, set(written)


def _sorted_unique(problems: list[ManifestProblem]) -> list[ManifestProblem]:
    return sorted(set(problems), key=lambda p: (p.line or 0, p.path, p.message))


# ---------------------------------------------------------------------------------------------


def _build(
    doc: dict[str, Any], lines: dict[DocPath, int], source: _Source, profile: str | None, profiles: list[str]
) -> Manifest:
    """Type a checked document, filling the documented defaults."""
    plant_dir = source.plant_dir
    transports = {
        name: TransportSpec(name, spec["type"], dict(spec.get("settings") or {}))
        for name, spec in doc["transports"].items()
    }
    default = doc.get("default_transport") or next(iter(transports))
    components = {
        name: ComponentSpec(
            name=name,
            type=spec["type"],
            transport=spec.get("transport") or default,
            replicas=spec.get("replicas", 1),
            group=spec.get("group") or name,
            params=dict(spec.get("params") or {}),
        )
        for name, spec in (doc.get("components") or {}).items()
    }
    bindings = [
        BindingSpec(
            topic=b["topic"], type=b.get("type"), type_field=b.get("type_field"),
            type_map=dict(b.get("type_map") or {}), source_field=b.get("source_field"),
            key_field=b.get("key_field"),
        )
        for b in doc.get("bindings") or []
    ]
    routes = [
        RouteSpec(source=r["from"], target=r["to"], topics=list(r["topics"]),
                  types=list(r["types"]) if r.get("types") is not None else None)
        for r in doc.get("routes") or []
    ]
    storage = doc.get("storage") or {}
    telemetry = doc.get("telemetry") or {}
    traces, metrics = telemetry.get("traces") or {}, telemetry.get("metrics") or {}
    runtime = doc.get("runtime") or {}
    restart = runtime.get("restart") or {}
    health = runtime.get("health", True)
    health = {} if health is True or health is None else health  # null in the base = not written
    port = False if health is False else health.get("port", 0)
    health_port = None if port is None or port is False else port  # `is`: 0 == False in Python
    probe = health if isinstance(health, dict) else {}  # the storage probe serves runtime.http's /ready too
    http, grpc = runtime.get("http") or {}, runtime.get("grpc") or {}
    replicas = {name: spec.replicas for name, spec in components.items()}
    return Manifest(
        path=source.file,
        plant_dir=plant_dir,
        name=doc["plant"]["name"],
        description=doc["plant"].get("description", ""),
        plugins=list(doc.get("plugins") or []),
        local_plugins=[(plant_dir / p).resolve() for p in doc.get("local_plugins") or []],
        schema_paths=[(plant_dir / p).resolve() for p in doc.get("schemas") or []],
        transports=transports,
        default_transport=default,
        components=components,
        bindings=bindings,
        routes=routes,
        tactics={name: dict(s or {}) for name, s in (doc.get("tactics") or {}).items()},
        storage=StorageSpec(
            url=storage.get("url", DEFAULT_STORAGE_URL.replace("{plant_dir}", str(plant_dir))),
            migrate_on_start=storage.get("migrate_on_start", True),
            pool_size=storage.get("pool_size"),
            prepared_statements=storage.get("prepared_statements", True),
        ),
        telemetry=TelemetrySpec(
            traces_exporter=traces.get("exporter", "none"),
            traces_endpoint=traces.get("endpoint"),
            metrics_exporter=metrics.get("exporter", "none"),
            metrics_endpoint=metrics.get("endpoint"),
            metrics_interval=float(metrics.get("interval", 60.0)),
        ),
        runtime=RuntimeSpec(
            health_host=(health.get("host") if isinstance(health, dict) else None) or "127.0.0.1",
            health_port=health_port,
            health_storage_timeout=float(probe.get("storage_timeout", 1.0)),
            health_storage_interval=float(probe.get("storage_interval", 2.0)),
            http_host=str(http.get("host") or "127.0.0.1"), http_port=int(http.get("port") or 0),
            grpc_host=str(grpc.get("host") or "127.0.0.1"), grpc_port=int(grpc.get("port") or 0),
            http_ports=expand_ports(http.get("ports") or {}, replicas),
            grpc_ports=expand_ports(grpc.get("ports") or {}, replicas),
            initial_backoff=float(restart.get("initial_backoff", 1.0)),
            max_backoff=float(restart.get("max_backoff", 30.0)),
            max_restarts=int(restart.get("max_restarts", 5)),
            window=float(restart.get("window", 60.0)),
            processes=str(runtime.get("processes") or "single"),
            in_parent=list(runtime.get("in_parent") or []),
            metrics=MetricsSettings.load(runtime.get("metrics"), where="runtime.metrics"),
        ),
        settings={name: dict(s) for name, s in (doc.get("settings") or {}).items()},
        profile=profile,
        profiles=profiles,
        raw=doc,
        _lines=lines,
    )
