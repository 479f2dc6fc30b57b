"""Hardened XML parsing and B2MML version detection.

Every byte that enters the plugin goes through :func:`parse`. It uses lxml with the unsafe
features switched off instead of defusedxml: defusedxml's lxml wrapper is deprecated, while the
parser options below close the same holes and we need lxml anyway for fast XSD validation.

* no DTD at all: a document with a ``<!DOCTYPE`` is refused before its entities could expand
  (billion laughs) or name a local file or URL (XXE); ``resolve_entities=False`` and
  ``load_dtd=False`` are the second line;
* ``no_network=True``: nothing is fetched while parsing;
* ``huge_tree=False``: libxml2's depth and text-node limits stay on;
* a size limit checked on the raw bytes, before parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from forge_core import ForgeError
from lxml import etree

__all__ = [
    "NAMESPACES",
    "VERBS",
    "B2mmlError",
    "Problem",
    "Version",
    "element_path",
    "local",
    "parse",
    "split_verb",
    "version_of",
]

Version = Literal["V0600", "V0701"]

#: The default namespace of each supported release (``xsd/*/SOURCE.md``).
NAMESPACES: dict[str, Version] = {
    "http://www.mesa.org/xml/B2MML-V0600": "V0600",
    "http://www.mesa.org/xml/B2MML": "V0701",
}
NAMESPACE_OF: dict[Version, str] = {v: k for k, v in NAMESPACES.items()}

#: ISA-95 Part 5 transaction verbs: ``<Verb><Noun>`` elements wrap the noun in a DataArea.
VERBS = ("Process", "Acknowledge", "Sync", "Get", "Show", "Change", "Cancel", "Confirm", "Respond")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: where (line, XPath-like path) and what."""

    message: str
    path: str = "/"
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "path": self.path, "message": self.message}


class B2mmlError(ForgeError):
    """A document was refused; ``problems`` holds every reason at once."""

    def __init__(self, summary: str, problems: list[Problem] | None = None, source: str = "") -> None:
        self.summary = summary
        self.problems = list(problems or [])
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.source}: {self.summary}" if self.source else self.summary
        if not self.problems:
            return head
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)

    def as_dict(self) -> dict[str, object]:
        return {"summary": self.summary, "source": self.source, "errors": [p.as_dict() for p in self.problems]}


_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "huge_tree": False, "load_dtd": False,
                   "dtd_validation": False, "remove_blank_text": False}


def _parser() -> etree.XMLParser:
    return etree.XMLParser(**_PARSER_OPTIONS)


def parse(data: bytes | str, *, max_bytes: int, source: str = "") -> etree._Element:
    """The root element of ``data``, parsed with every unsafe XML feature off.

    Raises :class:`B2mmlError` for a document over ``max_bytes``, malformed XML, or one with a
    DTD (entity declarations are how billion-laughs and XXE attacks start).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise B2mmlError(f"document too large: {len(raw)} bytes, the limit is {max_bytes} (setting max_bytes)",
                         source=source)
    if not raw.strip():
        raise B2mmlError("empty document", source=source)
    first = _FIRST_ELEMENT.search(raw)  # the prolog ends where the first element starts
    if b"<!DOCTYPE" in raw[: first.start() if first else len(raw)]:  # refused before libxml2 sees an entity
        raise _no_dtd(source)
    parser = _parser()
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        problems = [Problem(f"malformed XML: {e.message}", "/", e.line) for e in parser.error_log] or [
            Problem(f"malformed XML: {exc.msg}", "/", exc.lineno)]
        raise B2mmlError("not well-formed XML", problems, source) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:  # second line (other encodings)
        raise _no_dtd(source)
    return root


_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")


def _no_dtd(source: str) -> B2mmlError:
    return B2mmlError("a DTD is not allowed in B2MML documents (entity declarations could expand without bound "
                      "or read local files); send the document without <!DOCTYPE>",
                      [Problem("DOCTYPE present", "/", 1)], source)


def local(tag: object) -> str:
    """``{ns}Name`` → ``Name``."""
    text = str(tag)
    return text.rsplit("}", 1)[-1]


def version_of(root: etree._Element, *, source: str = "") -> Version:
    """The B2MML release, from the root element's namespace."""
    ns = etree.QName(root).namespace
    version = NAMESPACES.get(ns or "")
    if version is None:
        known = ", ".join(f"{v} = {k}" for k, v in NAMESPACES.items())
        got = f"namespace {ns!r}" if ns else "no namespace"
        raise B2mmlError(f"not a B2MML document: root <{local(root.tag)}> has {got}; expected the default "
                         f"namespace of a supported release ({known})",
                         [Problem(f"wrong namespace on {local(root.tag)}", f"/{local(root.tag)}",
                                  root.sourceline)], source)
    return version


def split_verb(name: str, nouns: frozenset[str]) -> tuple[str | None, str]:
    """``ProcessProductionSchedule`` → ``("Process", "ProductionSchedule")``; a bare noun → ``(None, noun)``.

    The noun is checked first: ``ProcessSegment`` is a noun, not the verb Process on ``Segment``.
    """
    if name in nouns:
        return None, name
    for verb in VERBS:
        if name.startswith(verb) and name[len(verb):] in nouns:
            return verb, name[len(verb):]
    return None, name


def element_path(element: etree._Element) -> str:
    """``/ProductionSchedule/ProductionRequest[2]/Priority``: local names, a position only where a
    name repeats among its siblings."""
    parts: list[str] = []
    node: etree._Element | None = element
    while node is not None and isinstance(node.tag, str):
        name = local(node.tag)
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))
