"""What a manifest names must be installed and active for the plant, and its sections must fit.

Transport and component types, tactic kinds and their implementations, and ``settings.<name>``
sections come from the installed plugins (:class:`~forge_core.manifest.model.Catalog`); a name from
a plugin the plant does not list is refused with the line to add, a name nobody provides with what
to install; each section is checked against the schema its plugin contributed, then against its
Settings model's own validators, with secret fields' values left out of the messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forge_core.manifest.jsonschema_check import schema_issues, show
from forge_core.manifest.model import Catalog, DocPath, Issue, install_hint, owner_of, plugin_key
from forge_core.manifest.references import mapping_at, unknown


def _masked(issues: list[Issue], section: dict[str, Any], secrets: frozenset[str]) -> list[Issue]:
    """The issues with a secret field's value (``secret_fields``: a key from the environment) left
    out of their messages: an error must not print the plant key it refuses."""
    out = []
    for issue in issues:
        message = issue.message
        key = issue.path[3] if len(issue.path) > 3 else None
        if key in secrets and isinstance(section.get(key), str) and section[key]:
            message = message.replace(show(section[key]), "<secret>").replace(section[key], "<secret>")
        out.append(Issue(issue.path, message, issue.line))
    return out


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
        for name, spec in mapping_at(doc, section).items():
            if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
                continue
            type_ = spec["type"]
            if type_ not in table:
                issues.append(Issue((section, name, "type"), unknown(
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

    for name, settings in mapping_at(doc, "tactics").items():
        if name not in catalog.tactics:
            kinds = [k for k in _active(catalog, "tactics", catalog.tactics, plugins) if "." not in k]
            issues.append(Issue(("tactics", name), unknown("tactic", str(name), kinds, None, "known kinds")))
        elif (owner := catalog.inactive_provider("tactics", name, plugins)) is not None:
            issues.append(Issue(("tactics", name), _not_active("tactic kind", str(name), owner)))
        elif isinstance(settings, dict) and isinstance(settings.get("use"), str) and (
                owner := catalog.inactive_provider("tactics", f"{name}.{settings['use']}", plugins)) is not None:
            issues.append(Issue(("tactics", name, "use"),  # the kind is active, its implementation's plugin is not
                                _not_active(f"implementation {settings['use']!r} of tactic", str(name), owner)))
        elif catalog.tactics[name] is not None and isinstance(settings, dict):
            issues.extend(schema_issues(settings, catalog.tactics[name], ("tactics", name)))

    for name, section in mapping_at(doc, "settings").items():
        schema = catalog.sections.get(name)
        if (owner := catalog.inactive_provider("sections", name, plugins)) is not None:
            issues.append(Issue(("settings", name), _not_active("settings section", str(name), owner)))
        elif schema is not None:
            if isinstance(section, dict):
                issues.extend(schema_issues(section, schema, ("settings", name)))
        elif plugin_key(str(name)) not in installed:  # an installed plugin without a schema reads its section as is
            known = set(catalog.sections) | catalog.plugins
            hint = _missing_hint(str(name), listed, catalog)
            message = unknown("settings section", str(name), known, hint, "sections of installed plugins")
            issues.append(Issue(("settings", name), message))
    return issues


def _active(catalog: Catalog, kind: str, table: Mapping[str, Any], listed: list[Any]) -> list[str]:
    """The names of ``table`` a plant listing ``listed`` can use (for "known: ..." lists)."""
    return [n for n in table if catalog.inactive_provider(kind, n, listed) is None]
