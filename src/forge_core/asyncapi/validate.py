"""Validation of a generated document against the official AsyncAPI 3.0.0 JSON Schema (bundled
in ``schema/`` with its licence, so it works offline)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("schema") / "asyncapi-3.0.0.schema.json"


@lru_cache(maxsize=1)
def official_schema() -> dict[str, Any]:
    """The official AsyncAPI 3.0.0 JSON Schema (draft-07)."""
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return schema


def document_errors(document: dict[str, Any]) -> list[str]:
    """Every way ``document`` breaks the official schema, each as ``<JSON path>: <message>``;
    empty when it is a valid AsyncAPI 3.0.0 document. Also checks what the schema cannot: every
    ``$ref`` points at something in the document, every address parameter is declared."""
    import jsonschema

    validator = jsonschema.Draft7Validator(official_schema())
    found = [f"{error.json_path}: {error.message[:300]}"
             for error in sorted(validator.iter_errors(document), key=lambda e: e.json_path)]
    found.extend(_dangling_refs(document, document, "$"))
    for name, channel in (document.get("channels") or {}).items():
        address = channel.get("address") or ""
        declared = set(channel.get("parameters") or {})
        used = {part.split("}", 1)[0] for part in address.split("{")[1:]}
        if used != declared:
            found.append(f"$.channels.{name}: address {address!r} uses parameters {sorted(used)}, declares "
                         f"{sorted(declared)}")
    return found


def _dangling_refs(node: Any, root: dict[str, Any], path: str) -> list[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        out = []
        if isinstance(ref, str) and ref.startswith("#/") and _resolve(root, ref) is None:
            out.append(f"{path}: $ref {ref!r} points at nothing in the document")
        for key, value in node.items():
            if key not in ("schema", "payload", "headers"):  # payload schemas' own refs are theirs
                out.extend(_dangling_refs(value, root, f"{path}.{key}"))
        return out
    if isinstance(node, list):
        return [e for index, item in enumerate(node) for e in _dangling_refs(item, root, f"{path}[{index}]")]
    return []


def _resolve(root: dict[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
