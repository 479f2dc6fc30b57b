"""Validation against MESA's official XSDs (shipped in ``xsd/``), every error at once.

Two backends: ``lxml`` (libxml2, the default: the benchmark measured it far faster, and its
messages list what was expected) and ``xmlschema`` (pure Python). Schemas are compiled once per
process (:func:`schema_for` is cached): compiling V0701 takes ~0.1 s with lxml, ~1.5 s with
xmlschema.

V0701 validates every root through ``AllSchemas.xsd``. V0600's ``AllSchemas.xsd`` does not load
(upstream defect: unresolved ``Extended:`` groups), so V0600 picks the entry-point file of the
document's noun (``ProductionSchedule`` → ``B2MML-V0600-ProductionSchedule.xsd``); a verb
(``ProcessProductionSchedule``) lives in the same file as its noun.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from forge_b2mml.xml import B2mmlError, Problem, Version, element_path, local, parse, split_verb, version_of

__all__ = ["NOUNS_V0600", "XSD_DIR", "Backend", "Document", "load", "schema_for", "validate", "validate_element"]

XSD_DIR = Path(__file__).parent / "xsd"
Backend = Literal["lxml", "xmlschema"]

#: V0600 noun → the entry-point XSD that declares it (and its verbs).
NOUNS_V0600: dict[str, str] = {
    "ProductionSchedule": "ProductionSchedule",
    "ProductionPerformance": "ProductionPerformance",
    "OperationsSchedule": "OperationsSchedule",
    "OperationsPerformance": "OperationsPerformance",
    "MaterialInformation": "Material", "MaterialDefinition": "Material", "MaterialLot": "Material",
    "MaterialClass": "Material", "MaterialSubLot": "Material", "MaterialTestSpec": "Material",
    "ProcessSegmentInformation": "ProcessSegment", "ProcessSegment": "ProcessSegment",
    "OperationsDefinitionInformation": "OperationsDefinition", "OperationsDefinition": "OperationsDefinition",
}
#: Nouns V0701's AllSchemas.xsd declares that this plugin reads or writes.
NOUNS_V0701 = frozenset({
    "OperationsSchedule", "OperationsPerformance", "MaterialInformation", "MaterialDefinition", "MaterialLot",
    "MaterialClass", "MaterialSubLot", "ProcessSegmentInformation", "ProcessSegment",
    "OperationsDefinitionInformation", "OperationsDefinition",
})


@dataclass(frozen=True)
class Document:
    """A parsed, valid B2MML document."""

    version: Version
    root: etree._Element
    verb: str | None      # ``Process``, ``Acknowledge``, ... or None for a bare noun
    noun: str             # ``ProductionSchedule``, ``OperationsPerformance``, ...
    source: str = ""

    @property
    def namespace(self) -> str:
        return etree.QName(self.root).namespace or ""


def _entry_point(version: Version, noun: str) -> Path:
    if version == "V0701":
        return XSD_DIR / "V0701" / "AllSchemas.xsd"
    return XSD_DIR / "V0600" / f"B2MML-V0600-{NOUNS_V0600[noun]}.xsd"


def nouns(version: Version) -> frozenset[str]:
    return frozenset(NOUNS_V0600) if version == "V0600" else NOUNS_V0701


@functools.cache
def schema_for(version: Version, noun: str, backend: Backend = "lxml") -> Any:
    """The compiled schema for ``noun`` of ``version`` (once per process and backend)."""
    path = _entry_point(version, noun)
    if backend == "lxml":
        # The XSDs are ours and trusted; the parser still never touches the network.
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        return etree.XMLSchema(etree.parse(str(path), parser))
    import xmlschema

    return xmlschema.XMLSchema(str(path))


_NS = re.compile(r"\{[^}]*\}")
_ELEMENT = re.compile(r"^Element '([^']*)'(?:, attribute '([^']*)')?: ")


def _clean(text: str) -> str:
    return _NS.sub("", text).strip()


def _lxml_problems(schema: etree.XMLSchema, root: etree._Element) -> list[Problem]:
    tree = root.getroottree()
    problems = []
    for entry in schema.error_log:
        element = None
        if entry.path:
            try:
                found = tree.xpath(entry.path)
                element = found[0] if found and isinstance(found[0], etree._Element) else None
            except etree.XPathError:
                element = None
        path = element_path(element) if element is not None else "/"
        message = _clean(entry.message)
        match = _ELEMENT.match(message)
        name = match.group(1) if match else (local(element.tag) if element is not None else "?")
        body = message[match.end():] if match else message
        if "This element is not expected" in body:
            parent = path.rsplit("/", 1)[0] or "/"
            expected = re.search(r"Expected is (?:one of )?\((.*)\)", body)
            text = f"Unexpected child {name} at {parent}"
            if expected:
                names = ", ".join(n.strip() for n in expected.group(1).split(","))
                text += f", expected one of ({names})" if "," in names else f", expected {names}"
            elif element is not None and element.getparent() is not None:
                text += ", no more children are allowed here (check the element order: B2MML sequences are ordered)"
            message = text
        elif "No matching global declaration" in body:
            message = f"{name} is not a root element of this B2MML release"
        else:
            where = f"attribute {match.group(2)} of {name}" if match and match.group(2) else name
            message = f"{where} at {path}: {body}"
        problems.append(Problem(message, path, entry.line))
    return problems


def _xmlschema_problems(schema: Any, root: etree._Element) -> list[Problem]:
    problems = []
    for error in schema.iter_errors(root):
        elem = error.elem if isinstance(getattr(error, "elem", None), etree._Element) else None
        reason = _clean(error.reason or str(error))
        index = getattr(error, "index", None)
        if reason.startswith("Unexpected child") and elem is not None and isinstance(index, int) and index < len(elem):
            child = elem[index]  # the offending child, so the path and line point at it
            parent = element_path(elem)
            expected = re.search(r"Tag (.*) expected", reason)
            message = f"Unexpected child {local(child.tag)} at {parent}" + (
                f", expected {expected.group(1)}" if expected else "")
            problems.append(Problem(message, element_path(child), child.sourceline))
            continue
        path = element_path(elem) if elem is not None else (error.path or "/")
        name = local(elem.tag) if elem is not None else path.rsplit("/", 1)[-1]
        line = getattr(error, "sourceline", None) or (elem.sourceline if elem is not None else None)
        problems.append(Problem(f"{name} at {path}: {reason}", path, line))
    return problems


def validate_element(root: etree._Element, version: Version, noun: str, backend: Backend = "lxml") -> list[Problem]:
    """Every schema violation of ``root`` (empty when valid).

    With ``lxml`` a valid document costs one libxml2 pass. libxml2 stops checking a parent's
    content after its first unexpected child, so for an invalid document xmlschema is run too to
    find every error; where both name the same element, lxml's wording is kept for misplaced
    children (it lists what was expected), xmlschema's for values.
    """
    if backend == "xmlschema":
        return _xmlschema_problems(schema_for(version, noun, "xmlschema"), root)
    schema = schema_for(version, noun, "lxml")
    if schema.validate(root):
        return []
    fast = _lxml_problems(schema, root)
    complete = _xmlschema_problems(schema_for(version, noun, "xmlschema"), root)
    by_path = {p.path: p for p in fast}
    merged = []
    for problem in complete:
        twin = by_path.pop(problem.path, None)
        keep_lxml = twin is not None and twin.message.startswith("Unexpected child")
        merged.append(twin if keep_lxml and twin is not None else problem)
    merged.extend(by_path.values())
    return sorted(merged, key=lambda p: (p.line or 0, p.path))


def load(data: bytes | str, *, max_bytes: int, backend: Backend = "lxml", source: str = "") -> Document:
    """Parse (hardened), detect the release from the namespace and validate; a :class:`Document`,
    or :class:`B2mmlError` with every problem at once."""
    root = parse(data, max_bytes=max_bytes, source=source)
    version = version_of(root, source=source)
    verb, noun = split_verb(local(root.tag), nouns(version))
    if noun not in nouns(version):
        supported = ", ".join(sorted(nouns(version)))
        raise B2mmlError(f"<{local(root.tag)}> is not a {version} document this plugin reads (nouns: {supported}, "
                         f"optionally wrapped in a verb such as Process)",
                         [Problem(f"unsupported root {local(root.tag)}", f"/{local(root.tag)}", root.sourceline)],
                         source)
    problems = validate_element(root, version, noun, backend)
    if problems:
        raise B2mmlError(f"invalid B2MML {version} {local(root.tag)}: {len(problems)} error(s)", problems, source)
    return Document(version, root, verb, noun, source)


def validate(data: bytes | str, *, max_bytes: int, backend: Backend = "lxml", source: str = "") -> list[Problem]:
    """Every problem of a document (parse, namespace, schema); empty when it is valid."""
    try:
        load(data, max_bytes=max_bytes, backend=backend, source=source)
    except B2mmlError as exc:
        return exc.problems or [Problem(exc.summary)]
    return []
