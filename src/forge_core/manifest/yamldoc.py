"""Parse a manifest's YAML keeping where every key and item was written.

``yaml.safe_load`` forgets positions and silently keeps the last of two equal keys; a plant
engineer needs the line of each problem and to hear about the duplicate, so we compose the
node tree once, build the data from it, and walk it for a path -> line map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
import yaml.composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from forge_core.errors import ManifestError, ManifestProblem
from forge_core.manifest.model import DocPath, Issue

_MERGE_TAG = "tag:yaml.org,2002:merge"

#: Limits that keep a hostile or broken manifest from hanging or crashing `forge validate`.
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000


@dataclass
class YamlDoc:
    """The constructed document, its line map, and problems only the YAML layer can see."""

    data: Any
    lines: dict[DocPath, int] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than :data:`MAX_DEPTH` while composing.

    PyYAML composes recursively (a 5,000-deep list is a RecursionError), so the depth is checked
    on the way down, before Python's own limit is near."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.first_alias: int | None = None  # line of the first alias, for the expansion problem

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) and self.first_alias is None and event.start_mark is not None:
            self.first_alias = event.start_mark.line + 1
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"the document is nested deeper than {MAX_DEPTH} levels", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def parse_yaml(text: str, file: str) -> YamlDoc:
    """Parse ``text`` as one YAML document; a syntax error raises :class:`ManifestError` with its line.

    Bounded: nesting deeper than :data:`MAX_DEPTH`, a recursive alias, or anchors and aliases
    that expand to more than :data:`MAX_NODES` nodes (a "billion laughs") are refused before the
    document is built or walked, so a small hostile file can neither exhaust memory nor hang.
    """
    loader = _BoundedLoader(text)
    doc = YamlDoc(None)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, loader.first_alias, file)
            # Walk before constructing: construction flattens `<<` merge keys into the nodes
            # in place, which would look like duplicate keys.
            _Walker(doc).walk(node, ())
            doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        prefix = "" if isinstance(exc, yaml.composer.ComposerError) and "nested deeper" in message else \
            "YAML syntax error: "
        raise ManifestError(
            [ManifestProblem("", f"{prefix}{message}", file, mark.line + 1 if mark else None)]
        ) from exc
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        raise ManifestError([ManifestProblem("", f"YAML error: {exc}", file)]) from exc
    except RecursionError as exc:  # pragma: no cover - MAX_DEPTH keeps well below Python's limit
        raise ManifestError([ManifestProblem("", "the document is nested too deeply", file)]) from exc
    finally:
        loader.dispose()
    return doc


def _check_expansion(root: Node, first_alias: int | None, file: str) -> None:
    """Refuse a recursive alias, or a node tree that aliases expand past :data:`MAX_NODES`.

    Aliases share nodes, so the tree is a graph; its expanded size is counted with one memo
    entry per node (linear in the file, whatever the expansion)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # Iterative post-order: a deep graph must not recurse either.
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node)
            sizes[key] = min(MAX_NODES + 1, 1 + sum(sizes[id(child)] for child in children))
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ManifestError([ManifestProblem(
                "", "recursive alias: an anchor's own value refers back to it; such a value has no end",
                file, node.start_mark.line + 1)])
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    if sizes[id(root)] > MAX_NODES:
        raise ManifestError([ManifestProblem(
            "", f"anchors and aliases expand the document to more than {MAX_NODES:,} values (an alias "
                "bomb?); write the values out or use fewer aliases", file, first_alias)])


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


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
