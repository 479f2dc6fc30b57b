"""Checks on one (already merged and substituted) manifest document.

Every check collects :class:`Issue` s instead of raising, so a plant engineer sees all that is
wrong in one run. Checks tolerate a document that failed the schema: a value of the wrong type
is reported once, by the schema, and skipped here.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from forge_core.manifest.metrics import MetricsSettings
from forge_core.manifest.model import Catalog, DocPath, Issue, install_hint, owner_of, plugin_key
from forge_core.manifest.ports import port_issues
from forge_core.messages.schemas import schema_problem

SCHEMA_FILE = "manifest.schema.json"


@cache
def manifest_schema() -> dict[str, Any]:
    """The manifest JSON Schema: from the installed wheel, else from the source checkout; sections
    declared as Settings models (``runtime.metrics``) are filled in from their model."""
    schema = _schema_file()
    schema["properties"]["runtime"]["properties"]["metrics"] = MetricsSettings.json_schema()
    return schema


def _schema_file() -> dict[str, Any]:
    try:
        packaged = resources.files("forge_core").joinpath("_schemas", SCHEMA_FILE)
        if packaged.is_file():
            return dict(json.loads(packaged.read_text(encoding="utf-8")))
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover
        pass
    # Editable install: <repo>/src/forge_core/manifest/validate.py -> <repo>/schemas/
    return dict(json.loads((Path(__file__).resolve().parents[3] / "schemas" / SCHEMA_FILE).read_text("utf-8")))


def _strict_integer(checker: Any, instance: Any) -> bool:
    """An integer is an ``int``: JSON Schema's "integer" also takes 1.0 and 1e308, which the runtime
    cannot use as a count (``range(1e308)`` is a TypeError at start)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _strict(cls: type[Any]) -> type[Any]:
    return validators.extend(cls, type_checker=cls.TYPE_CHECKER.redefine("integer", _strict_integer))


@cache
def _manifest_validator() -> Any:
    return _strict(Draft202012Validator)(manifest_schema())


#: Largest magnitude of a float a manifest may hold: 1e12 seconds is over 31,000 years, so no
#: interval, timeout or amount needs more, and 1e30 s overflows the event loop's timers.
MAX_FLOAT = 1e12
#: Integers are 64-bit signed, what every store, wire format and C library behind Forge holds.
INT64 = 2**63


def number_problem(value: Any) -> str | None:
    """What is wrong with a number no schema can refuse (JSON Schema cannot say "finite"), or None."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{value} is not a finite number; write a number (inf and nan are not values)"
        if abs(value) > MAX_FLOAT:
            return f"{value:g} is out of range: numbers in a manifest are at most {MAX_FLOAT:g} in magnitude"
    elif isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        return f"{value} is out of range: integers in a manifest are 64-bit (-2**63 to 2**63-1)"
    return None


def number_issues(doc: Any, path: DocPath = ()) -> list[Issue]:
    """Every number in the document, schema or not (librdkafka passthrough keys included), must
    be finite and sane: one check here instead of a bound on each of hundreds of fields."""
    issues: list[Issue] = []
    stack: list[tuple[DocPath, Any]] = [(path, doc)]
    while stack:
        here, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*here, key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend(((*here, index), item) for index, item in enumerate(value))
        elif (problem := number_problem(value)) is not None:
            issues.append(Issue(here, problem))
    return issues


def profile_keys() -> frozenset[str]:
    """Top-level keys a profile may set (the schema's ``$defs.profile`` properties)."""
    return frozenset(manifest_schema()["$defs"]["profile"]["properties"])


def dotted(path: Iterable[str | int]) -> str:
    """``("bindings", 0, "topic")`` -> ``"bindings[0].topic"``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _masked(issues: list[Issue], section: dict[str, Any], secrets: frozenset[str]) -> list[Issue]:
    """The issues with a secret field's value (``secret_fields``: a key from the environment) left
    out of their messages: an error must not print the plant key it refuses."""
    out = []
    for issue in issues:
        message = issue.message
        key = issue.path[3] if len(issue.path) > 3 else None
        if key in secrets and isinstance(section.get(key), str) and section[key]:
            message = message.replace(_show(section[key]), "<secret>").replace(section[key], "<secret>")
        out.append(Issue(issue.path, message, issue.line))
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_NAMES = {
    dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer", float: "number",
    type(None): "null",
}


def _type_of(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------
# JSON Schema


def schema_issues(doc: Any, schema: dict[str, Any] | None = None, prefix: DocPath = ()) -> list[Issue]:
    """Validate ``doc`` against ``schema`` (the manifest schema by default); paths get ``prefix``."""
    if schema is None:
        validator = _manifest_validator()
    else:
        problem = schema_problem(schema)
        if problem is not None:
            return [Issue(prefix, f"the schema contributed for this section is invalid: {problem}")]
        validator = _strict(validators.validator_for(schema, default=Draft202012Validator))(schema)
    issues: list[Issue] = []
    for error in validator.iter_errors(doc):
        issues.extend(_humanize(error, prefix))
    return issues


def _humanize(error: ValidationError, prefix: DocPath) -> Iterator[Issue]:
    path: DocPath = (*prefix, *error.absolute_path)
    kind, value, schema = error.validator, error.instance, error.schema
    if number_problem(value) is not None:
        return  # reported once, by number_issues, with the reason that matters
    if path == ("version",) and not prefix:
        yield Issue(path, f"unsupported manifest version {_show(value)}; this Forge reads version 1 "
                          "(write `version: 1`)")
    elif kind == "required":
        missing = [key for key in error.validator_value if isinstance(value, dict) and key not in value]
        for key in missing or error.validator_value:
            hint = " (write `version: 1`)" if key == "version" and not path else ""
            yield Issue((*path, key), f"required key {key!r} is missing{hint}")
    elif kind == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(schema.get("properties", {}))
        for key in value:
            if key in schema.get("properties", {}) or any(
                re.search(p, str(key)) for p in schema.get("patternProperties", {})
            ):
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            listing = f"; allowed: {', '.join(allowed)}" if allowed else ""
            yield Issue((*path, key), f"unknown key {key!r}{guess}{listing}")
    elif "propertyNames" in error.relative_schema_path and "not" in schema and "description" in schema:
        yield Issue((*path, value), f"unknown key {_show(value)}: {schema['description']}")
    elif "propertyNames" in error.relative_schema_path:
        yield Issue((*path, value), f"invalid name {_show(value)}: must match {schema.get('pattern', '')!r}"
                    if kind == "pattern" else f"invalid name {_show(value)}: {error.message}")
    elif kind == "type":
        expected = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        names = " or ".join("mapping" if t == "object" else "list" if t == "array" else t for t in expected)
        yield Issue(path, f"expected {names}, got {_type_of(value)} {_show(value)}")
    elif kind == "enum":
        yield Issue(path, f"{_show(value)} is not one of {', '.join(map(repr, error.validator_value))}")
    elif kind == "pattern":
        yield Issue(path, f"{_show(value)} does not match {error.validator_value!r}")
    elif kind == "minLength" and isinstance(value, str):
        yield Issue(path, f"{_show(value)} is shorter than {error.validator_value} characters")
    elif kind in ("oneOf", "anyOf") and error.context:
        # a branch of the value's own type says what is wrong ("too short"), not a "expected null"
        # from the branch of another type (``str | None`` with a minimum length, say)
        fitting = [e for e in error.context if e.validator != "type"]
        yield from _humanize(best_match(fitting or error.context), prefix)
    else:
        # jsonschema's own messages mostly name the value already ("0 is less than the minimum of 1").
        shown = _show(value)
        yield Issue(path, error.message if shown in error.message else f"{shown}: {error.message}")


# ---------------------------------------------------------------------------------------------
# Structure and catalog


def _unknown(
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


def _not_active(what: str, name: str, plugin: str) -> str:
    return (f"{what} {name!r} is provided by plugin {plugin!r}, which is installed but not active for this "
            f"plant: a plant sees only the plugins it lists; add {plugin!r} to `plugins:`")


def _missing_hint(name: str, listed: set[str], catalog: Catalog) -> str | None:
    """For a name nobody installed provides: if the plant lists a plugin it points at (by its
    prefix) and that plugin is not installed, say what to install."""
    owner = plugin_key(owner_of(name))
    installed = {plugin_key(p) for p in catalog.plugins}
    if owner in listed and owner not in installed:
        return f"plugin {owner!r} (listed under plugins:) would provide it but is not installed: {install_hint(owner)}"
    if owner not in listed and owner not in installed:
        return (f"if a plugin provides it, list the plugin under `plugins:` and install it "
                f"(Forge's plugins are distributions named forge-<plugin>: {install_hint(owner)})")
    return None


def _topic_problem(pattern: str) -> str | None:
    levels = pattern.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return f"invalid topic pattern {pattern!r}: '#' must be a whole level and the last one"
        if "+" in level and level != "+":
            return f"invalid topic pattern {pattern!r}: '+' must be a whole level"
    return None


def _mapping(doc: dict[str, Any], key: str) -> dict[str, Any]:
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
    transports = _mapping(doc, "transports")
    declared = sorted(transports)

    def ref(path: DocPath, name: Any) -> None:
        if isinstance(name, str) and name not in transports:
            issues.append(Issue(path, _unknown("transport", name, declared, None, "declared transports")))

    ref(("default_transport",), doc.get("default_transport"))
    for name, spec in _mapping(doc, "components").items():
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

    restart = _mapping(_mapping(doc, "runtime"), "restart")
    low, high = restart.get("initial_backoff", 1.0), restart.get("max_backoff", 30.0)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) and low > high:
        where = "max_backoff" if "max_backoff" in restart else "initial_backoff"
        issues.append(Issue(("runtime", "restart", where),
                            f"initial_backoff {low} is greater than max_backoff {high}"))
    in_parent = _mapping(doc, "runtime").get("in_parent")
    components = _mapping(doc, "components")
    for index, name in enumerate(in_parent if isinstance(in_parent, list) else []):
        if isinstance(name, str) and name not in components:
            issues.append(Issue(("runtime", "in_parent", index),
                                f"{name!r} is not a component; components: {', '.join(components) or 'none'}"))
    issues += port_issues(doc.get("runtime"), components)
    return issues


def model_issues(model: Any, data: dict[str, Any], at: DocPath) -> list[Issue]:
    """The problems a Settings model's own validators find in ``data`` (its schema already passed)."""
    from forge_core.errors import SettingsError

    try:
        model.load(data, where="")
    except SettingsError as exc:
        return [Issue((*at, *[part for part in path.split(".") if part]), message) for path, message in exc.problems]
    return []


def catalog_issues(doc: dict[str, Any], catalog: Catalog) -> list[Issue]:
    """What the manifest names must exist in the installed plugins, and come from plugins the plant
    lists (or core, or its local plugins); their sections must fit their schemas."""
    issues: list[Issue] = []
    listed_plugins = doc.get("plugins")
    plugins: list[Any] = listed_plugins if isinstance(listed_plugins, list) else []
    listed = {plugin_key(p) for p in plugins if isinstance(p, str)}
    installed = {plugin_key(p) for p in catalog.plugins}
    for index, plugin in enumerate(plugins):
        if isinstance(plugin, str) and plugin_key(plugin) not in installed:
            names = ", ".join(sorted(catalog.plugins)) or "none"
            issues.append(Issue(("plugins", index),
                                f"plugin {plugin!r} is not installed; installed: {names}; {install_hint(plugin)}"))

    def typed(section: str, kind: str, table: Mapping[str, dict[str, Any] | None], body: str) -> None:
        for name, spec in _mapping(doc, section).items():
            if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
                continue
            type_ = spec["type"]
            if type_ not in table:
                issues.append(Issue((section, name, "type"), _unknown(
                    f"{kind} type", type_, _active(catalog, section, table, plugins), _missing_hint(type_, listed,
                                                                                                  catalog))))
            elif (owner := catalog.inactive_provider(section, type_, plugins)) is not None:
                issues.append(Issue((section, name, "type"), _not_active(f"{kind} type", type_, owner)))
            elif table[type_] is not None and isinstance(spec.get(body, {}), dict):
                found = schema_issues(spec.get(body, {}), table[type_], (section, name, body))
                model = catalog.models.get(section, {}).get(type_)
                if not found and model is not None:  # what the schema cannot say, the model's validators do
                    found = model_issues(model, spec.get(body) or {}, (section, name, body))
                secrets: frozenset[str] = getattr(model, "secret_fields", frozenset())
                issues.extend(_masked(found, spec.get(body) or {}, secrets) if secrets else found)

    typed("transports", "transport", catalog.transports, "settings")
    typed("components", "component", catalog.components, "params")

    for name, settings in _mapping(doc, "tactics").items():
        if name not in catalog.tactics:
            kinds = [k for k in _active(catalog, "tactics", catalog.tactics, plugins) if "." not in k]
            issues.append(Issue(("tactics", name), _unknown("tactic", str(name), kinds, None, "known kinds")))
        elif (owner := catalog.inactive_provider("tactics", name, plugins)) is not None:
            issues.append(Issue(("tactics", name), _not_active("tactic kind", str(name), owner)))
        elif isinstance(settings, dict) and isinstance(settings.get("use"), str) and (
                owner := catalog.inactive_provider("tactics", f"{name}.{settings['use']}", plugins)) is not None:
            issues.append(Issue(("tactics", name, "use"),  # the kind is active, its implementation's plugin is not
                                _not_active(f"implementation {settings['use']!r} of tactic", str(name), owner)))
        elif catalog.tactics[name] is not None and isinstance(settings, dict):
            issues.extend(schema_issues(settings, catalog.tactics[name], ("tactics", name)))

    for name, section in _mapping(doc, "settings").items():
        schema = catalog.sections.get(name)
        if (owner := catalog.inactive_provider("sections", name, plugins)) is not None:
            issues.append(Issue(("settings", name), _not_active("settings section", str(name), owner)))
        elif schema is not None:
            if isinstance(section, dict):
                issues.extend(schema_issues(section, schema, ("settings", name)))
        elif plugin_key(str(name)) not in installed:  # an installed plugin without a schema reads its section as is
            known = set(catalog.sections) | catalog.plugins
            hint = _missing_hint(str(name), listed, catalog)
            message = _unknown("settings section", str(name), known, hint, "sections of installed plugins")
            issues.append(Issue(("settings", name), message))
    return issues


def _active(catalog: Catalog, kind: str, table: Mapping[str, Any], listed: list[Any]) -> list[str]:
    """The names of ``table`` a plant listing ``listed`` can use (for "known: ..." lists)."""
    return [n for n in table if catalog.inactive_provider(kind, n, listed) is None]
