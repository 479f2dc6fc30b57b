"""Checks on one (already merged and substituted) manifest document.

Every check collects :class:`Issue` s instead of raising, so a plant engineer sees all that is
wrong in one run. Checks tolerate a document that failed the schema: a value of the wrong type
is reported once, by the schema, and skipped here.

Each job has its module: :mod:`~forge_core.manifest.jsonschema_check` (the schema, its errors said
plainly), :mod:`~forge_core.manifest.numbers` (every number finite and sane),
:mod:`~forge_core.manifest.references` (cross-references and files) and
:mod:`~forge_core.manifest.catalog_check` (what the plant names is installed and active, sections fit
their plugins' schemas). Their public names stay importable from here.
"""

from __future__ import annotations

from collections.abc import Iterable

from forge_core.manifest.catalog_check import catalog_issues, model_issues
from forge_core.manifest.jsonschema_check import SCHEMA_FILE, manifest_schema, profile_keys, schema_issues
from forge_core.manifest.numbers import INT64, MAX_FLOAT, number_issues, number_problem
from forge_core.manifest.references import structure_issues

__all__ = ["INT64", "MAX_FLOAT", "SCHEMA_FILE", "catalog_issues", "dotted", "manifest_schema", "model_issues",
           "number_issues", "number_problem", "profile_keys", "schema_issues", "structure_issues"]


def dotted(path: Iterable[str | int]) -> str:
    """``("bindings", 0, "topic")`` -> ``"bindings[0].topic"``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
