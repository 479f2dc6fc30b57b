"""Cross-references and files: what the manifest's schema cannot express.

Transports named by components, routes and ``default_transport`` must be declared; bindings give
one of ``type`` and ``type_field``; topic patterns are well formed; local plugin files and schema
paths exist; backoffs are ordered; ``runtime.in_parent`` names components; ports do not clash.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forge_core.manifest.model import DocPath, Issue
from forge_core.manifest.ports import port_issues


def unknown(
    what: str, name: str, known: Iterable[str], hint: str | None, known_label: str = "known"
) -> str:
    names = sorted(known)
    message = f"unknown {what} {name!r}"
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    message += f"; {known_label}: {', '.join(names) if names else 'none'}"
    if hint:
        message += f"; {hint}"
    return message


def _topic_problem(pattern: str) -> str | None:
    levels = pattern.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return f"invalid topic pattern {pattern!r}: '#' must be a whole level and the last one"
        if "+" in level and level != "+":
            return f"invalid topic pattern {pattern!r}: '+' must be a whole level"
    return None


def mapping_at(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _items(doc: dict[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    value = doc.get(key)
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, dict)]


def structure_issues(doc: dict[str, Any], plant_dir: Path) -> list[Issue]:
    """Cross-references and files: what the schema cannot express."""
    issues: list[Issue] = []
    transports = mapping_at(doc, "transports")
    declared = sorted(transports)

    def ref(path: DocPath, name: Any) -> None:
        if isinstance(name, str) and name not in transports:
            issues.append(Issue(path, unknown("transport", name, declared, None, "declared transports")))

    ref(("default_transport",), doc.get("default_transport"))
    for name, spec in mapping_at(doc, "components").items():
        if isinstance(spec, dict):
            ref(("components", name, "transport"), spec.get("transport"))
    for index, route in _items(doc, "routes"):
        ref(("routes", index, "from"), route.get("from"))
        ref(("routes", index, "to"), route.get("to"))
        if isinstance(route.get("from"), str) and route.get("from") == route.get("to"):
            message = f"route forwards transport {route['to']!r} to itself"
            issues.append(Issue(("routes", index, "to"), message))
        for t_index, topic in enumerate(route.get("topics") or []):
            if isinstance(topic, str) and (problem := _topic_problem(topic)):
                issues.append(Issue(("routes", index, "topics", t_index), problem))

    for index, binding in _items(doc, "bindings"):
        has_type, has_field = binding.get("type") is not None, binding.get("type_field") is not None
        if has_type == has_field:
            issues.append(Issue(
                ("bindings", index, "type" if has_type else "topic"),
                "give exactly one of 'type' (a fixed message type) and 'type_field' (a payload field "
                + ("naming it), not both" if has_type else "naming it)"),
            ))
        if binding.get("type_map") is not None and not has_field:
            issues.append(Issue(("bindings", index, "type_map"), "'type_map' needs 'type_field'"))
        if isinstance(binding.get("topic"), str) and (problem := _topic_problem(binding["topic"])):
            issues.append(Issue(("bindings", index, "topic"), problem))

    for key, label in (("local_plugins", "local plugin file"), ("schemas", "schema path")):
        entries = doc.get(key)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, str):
                continue
            target = plant_dir / entry
            exists = target.is_file() if key == "local_plugins" else target.exists()
            if not exists:
                issues.append(Issue((key, index), f"{label} {entry!r} not found (looked for {target})"))

    restart = mapping_at(mapping_at(doc, "runtime"), "restart")
    low, high = restart.get("initial_backoff", 1.0), restart.get("max_backoff", 30.0)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) and low > high:
        where = "max_backoff" if "max_backoff" in restart else "initial_backoff"
        issues.append(Issue(("runtime", "restart", where),
                            f"initial_backoff {low} is greater than max_backoff {high}"))
    in_parent = mapping_at(doc, "runtime").get("in_parent")
    components = mapping_at(doc, "components")
    for index, name in enumerate(in_parent if isinstance(in_parent, list) else []):
        if isinstance(name, str) and name not in components:
            issues.append(Issue(("runtime", "in_parent", index),
                                f"{name!r} is not a component; components: {', '.join(components) or 'none'}"))
    issues += port_issues(doc.get("runtime"), components)
    return issues
