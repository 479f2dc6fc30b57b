"""Parse a manifest's YAML keeping where every key and item was written.

``yaml.safe_load`` forgets positions and silently keeps the last of two equal keys; a plant
engineer needs the line of each problem and to hear about the duplicate, so we compose the
node tree once, build the data from it, and walk it for a path -> line map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from forge_core.errors import ManifestError, ManifestProblem
from forge_core.manifest.model import DocPath, Issue

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class YamlDoc:
    """The constructed document, its line map, and problems only the YAML layer can see."""

    data: Any
    lines: dict[DocPath, int] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)


def parse_yaml(text: str, file: str) -> YamlDoc:
    """Parse ``text`` as one YAML document; a syntax error raises :class:`ManifestError` with its line."""
    loader = yaml.SafeLoader(text)
    doc = YamlDoc(None)
    try:
        node = loader.get_single_node()
        if node is not None:
            # Walk before constructing: construction flattens `<<` merge keys into the nodes
            # in place, which would look like duplicate keys.
            _Walker(doc).walk(node, ())
            doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ManifestError(
            [ManifestProblem("", f"YAML syntax error: {message}", file, mark.line + 1 if mark else None)]
        ) from exc
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare (e.g. bad encoding)
        raise ManifestError([ManifestProblem("", f"YAML error: {exc}", file)]) from exc
    finally:
        loader.dispose()
    return doc


class _Walker:
    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.keys = SafeConstructor()
        self.active: set[int] = set()  # ids of nodes on the current branch, so recursive aliases end

    def walk(self, node: Node, path: DocPath, line: int | None = None) -> None:
        self.doc.lines.setdefault(path, line if line is not None else node.start_mark.line + 1)
        if id(node) in self.active:
            return
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                self._mapping(node, path)
            elif isinstance(node, SequenceNode):
                for index, item in enumerate(node.value):
                    self.walk(item, (*path, index))
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, path: DocPath) -> None:
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                # `<<: *anchor` - the merged keys live where the anchor was written.
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, MappingNode):
                        self._mapping_lines_only(source, path)
                continue
            key = self._key(key_node)
            key_line = key_node.start_mark.line + 1
            if key in seen:
                self.doc.issues.append(Issue(
                    (*path, key),
                    f"duplicate key {key!r} (first at line {seen[key]}); YAML would keep only the last one",
                    key_line,
                ))
                continue
            seen[key] = key_line
            # A mapping entry is located by its key: that is the line a reader looks for.
            self.walk(value_node, (*path, key), key_line)

    def _mapping_lines_only(self, node: MappingNode, path: DocPath) -> None:
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                self.walk(value_node, (*path, self._key(key_node)), key_node.start_mark.line + 1)

    def _key(self, node: Node) -> Any:
        if isinstance(node, ScalarNode):
            try:
                key = self.keys.construct_object(node, deep=True)
                return key if isinstance(key, str | int | float | bool) or key is None else str(key)
            except yaml.YAMLError:
                return node.value
        return f"<{type(node).__name__} key>"  # complex keys cannot be addressed by a path anyway
