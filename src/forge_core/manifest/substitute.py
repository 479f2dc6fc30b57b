"""Secrets and placeholders: ``${env:NAME}``, ``${env:NAME:-default}`` and ``{plant_dir}``.

Secrets come from the environment, never from the file, so a manifest can be committed and
shared; a literal value under a key that looks secret is reported rather than used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forge_core.manifest.model import DocPath, Issue

# A default may hold ``{plant_dir}`` (``${env:DB_URL:-sqlite:///{plant_dir}/x.db}``): its closing brace is
# not the reference's end.
ENV_REF = re.compile(r"\$\{env:(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>(?:\{plant_dir\}|[^}])*))?\}")
_ANY_REF = re.compile(r"\$\{env:[^}]*\}?")
SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_key|apikey|private_key|key_password)$", re.I)
PLANT_DIR = "{plant_dir}"
# Structural keys that make poor environment variable names in the suggestion.
_SECTION_WORDS = {"settings", "params", "transports", "components", "tactics", "profiles"}


def is_secret_key(key: object) -> bool:
    """``password``, ``db_password``, ``API-Key``... (case-insensitive, also as a suffix)."""
    return isinstance(key, str) and SECRET_KEY.search(key.replace("-", "_")) is not None


#: ``scheme://user:password@host``: the password part of a URL's userinfo.
_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)(?P<password>[^@/?#\s]*)(?P<tail>@.*)$")


def env_var_name(path: DocPath) -> str:
    """A valid environment variable name suggested for the secret at ``path``:
    ``transports.kafka.settings.config.sasl.password`` -> ``CONFIG_SASL_PASSWORD``."""
    named = [p for p in path if isinstance(p, str) and p not in _SECTION_WORDS][-2:]
    name = re.sub(r"[^A-Za-z0-9_]+", "_", "_".join(named)).strip("_").upper() or "SECRET"
    return name if not name[0].isdigit() else f"_{name}"


def url_password_issue(value: str, path: DocPath) -> Issue | None:
    """A literal password inside a URL (``postgresql://u:secret@h/db``), with the fix."""
    match = _URL_PASSWORD.match(value)
    if match is None or not match.group("password") or ENV_REF.fullmatch(match.group("password")):
        return None
    var = f"{env_var_name(path)}_PASSWORD"
    fixed = f"{match.group('head')}${{env:{var}}}{match.group('tail')}"
    return Issue(path, f"password written in the URL; take it from the environment: {fixed!r} (or the whole URL "
                       f"from one variable, ${{env:{env_var_name(path)}}})")


def secret_issues(doc: Any, path: DocPath = ()) -> list[Issue]:
    """Literal strings under secret-looking keys (anything but a whole ``${env:...}`` reference),
    and literal passwords inside URLs anywhere."""
    issues: list[Issue] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            here = (*path, key)
            if is_secret_key(key) and isinstance(value, str) and value and not ENV_REF.fullmatch(value):
                var = env_var_name(here)
                message = f"secret written in the file; use ${{env:VAR}} (e.g. ${{env:{var}}})"
                issues.append(Issue(here, message))
            else:
                issues.extend(secret_issues(value, here))
    elif isinstance(doc, list):
        for index, item in enumerate(doc):
            issues.extend(secret_issues(item, (*path, index)))
    elif isinstance(doc, str) and (issue := url_password_issue(doc, path)) is not None:
        issues.append(issue)
    return issues


def substitute(
    doc: Any, *, env: Mapping[str, str], plant_dir: Path, path: DocPath = ()
) -> tuple[Any, list[Issue]]:
    """A copy of ``doc`` with references replaced in every string value, and the references that failed."""
    issues: list[Issue] = []
    if isinstance(doc, dict):
        out: dict[Any, Any] = {}
        for key, value in doc.items():
            out[key], found = substitute(value, env=env, plant_dir=plant_dir, path=(*path, key))
            issues.extend(found)
        return out, issues
    if isinstance(doc, list):
        items = []
        for index, item in enumerate(doc):
            new, found = substitute(item, env=env, plant_dir=plant_dir, path=(*path, index))
            items.append(new)
            issues.extend(found)
        return items, issues
    if not isinstance(doc, str):
        return doc, issues

    def replace(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in env:
            return env[name]
        if default is not None:
            return default
        issues.append(Issue(path, f"environment variable {name!r} is not set and ${{env:{name}}} has no "
                                  f"default (set it, or write ${{env:{name}:-default}})"))
        return ""

    text = ENV_REF.sub(replace, doc)
    # What is left of "${env:" after the valid references are gone is malformed.
    for bad in _ANY_REF.findall(ENV_REF.sub("", doc)):
        issues.append(Issue(path, f"malformed environment reference {bad!r}; write ${{env:NAME}} or "
                                  "${env:NAME:-default}, NAME letters, digits and _ (not a digit first)"))
    # {plant_dir} is replaced after env values, so a variable may itself use it.
    text = text.replace(PLANT_DIR, str(plant_dir))
    if _is_port_key(path) and ENV_REF.fullmatch(doc) and text.isdigit():
        return int(text), issues  # `port: ${env:MQTT_PORT:-1883}`: the environment only has text
    return text, issues


def _is_port_key(path: DocPath) -> bool:
    """A ``port`` or ``*_port`` key, or an entry of ``runtime.http.ports`` / ``runtime.grpc.ports``
    (``runtime.http.ports.pms-0``): a whole ``${env:...}`` there becomes an integer."""
    key = path[-1] if path else None
    in_ports = len(path) == 4 and path[0] == "runtime" and path[1] in ("http", "grpc") and path[2] == "ports"
    return in_ports or (isinstance(key, str) and (key == "port" or key.endswith("_port")))
