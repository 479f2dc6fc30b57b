"""A component's handlers must find its state made: the rule ``forge plugin check`` applies to start().

A broker may deliver as soon as a subscription exists: a persistent MQTT session's queue, a Kafka group's
uncommitted offsets, a retained message. So a handler can run while ``start()`` still awaits its next
subscription, and an attribute ``start()`` sets only after its first ``subscribe`` is missing then: an
``AttributeError``, a ``handler_error`` dead letter, the message lost to the component (the pasta drill's
scheduler met exactly this with a heartbeat backlog after a restart).

:func:`late_state` reads a module's source (no import) and names every attribute that a handler
subscribed in ``start()`` reads, directly or through the class's own methods and properties, and that
``start()`` first sets after the line that subscribes that handler. Attributes set in ``__init__`` or in
the class body count as made (the base ``Component``'s ``ctx``, ``params`` and ``name`` are made before
``start()``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LateState", "late_state"]

Method = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class LateState:
    """``start()`` of ``cls`` first sets ``attribute`` at ``line``, after subscribing ``handler`` (at
    ``subscribed_at``), which reads it through ``path`` (method names, the handler first)."""

    cls: str
    attribute: str
    line: int
    subscribed_at: int
    handler: str
    path: tuple[str, ...]

    def __str__(self) -> str:
        through = " -> ".join(self.path) + (f" -> self.{self.attribute}" if self.path else "")
        return (f"line {self.line}: {self.cls}.start() sets self.{self.attribute} after subscribing {self.handler} "
                f"(line {self.subscribed_at}), which reads it ({through}); a broker may deliver before start() "
                f"returns: set it before subscribing")


def late_state(path: Path) -> list[LateState]:
    """Every :class:`LateState` of the module at ``path`` (``[]`` when its source does not parse)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError):
        return []  # the layout check reports a module that does not parse
    found: list[LateState] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            found.extend(_class_problems(node))
    return found


def _class_problems(cls: ast.ClassDef) -> list[LateState]:
    methods: dict[str, Method] = {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    start = methods.get("start")
    if start is None:
        return []
    made = set(methods) | _class_names(cls) | _assigned(methods.get("__init__"))
    first_set: dict[str, int] = {}  # attribute -> the first line of start() that sets it
    for name, line in sorted(_assignments(start), key=lambda item: item[1]):
        first_set.setdefault(name, line)
    subscribed: dict[str, int] = {}  # handler -> the line of its first subscription in start()
    for call in sorted(_subscribe_calls(start), key=lambda c: c.lineno):
        handler = _handler_name(call)
        if handler is not None:
            subscribed.setdefault(handler, call.lineno)
    problems = []
    reported: set[str] = set()
    for handler, line in subscribed.items():
        for attribute, path in _reads(handler, methods).items():
            if attribute in made or attribute in reported or first_set.get(attribute, 0) <= line:
                continue
            reported.add(attribute)
            problems.append(LateState(cls.name, attribute, first_set[attribute], line, handler, path))
    return problems


def _subscribe_calls(node: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == "subscribe"]


def _handler_name(call: ast.Call) -> str | None:
    handler = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "handler"),
                                                            None)
    if isinstance(handler, ast.Attribute) and isinstance(handler.value, ast.Name) and handler.value.id == "self":
        return handler.attr
    return None


def _class_names(cls: ast.ClassDef) -> set[str]:
    names = set()
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign):
            names |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names.add(stmt.target.id)
    return names


def _assigned(method: Method | None) -> set[str]:
    return set() if method is None else {name for name, _ in _assignments(method)}


def _assignments(node: ast.AST) -> list[tuple[str, int]]:
    """``self.X`` stored anywhere under ``node``, with the line."""
    return [(n.attr, n.lineno) for n in ast.walk(node) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
            and isinstance(n.value, ast.Name) and n.value.id == "self"]


def _reads(handler: str, methods: dict[str, Method]) -> dict[str, tuple[str, ...]]:
    """Attributes ``handler`` reads on ``self``, following the class's own methods and properties, each with
    the first path of method names found to it (breadth first, so the shortest)."""
    seen: dict[str, tuple[str, ...]] = {}
    queue: list[tuple[str, tuple[str, ...]]] = [(handler, (handler,))]
    visited = {handler}
    while queue:
        name, path = queue.pop(0)
        method = methods.get(name)
        if method is None:
            continue
        for node in ast.walk(method):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) \
                    and isinstance(node.value, ast.Name) and node.value.id == "self":
                if node.attr in methods:
                    if node.attr not in visited:
                        visited.add(node.attr)
                        queue.append((node.attr, (*path, node.attr)))
                else:
                    seen.setdefault(node.attr, path)
    return seen
