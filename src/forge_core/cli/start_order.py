"""A component's handlers must find its state made: the rule ``forge plugin check`` applies to start().

A broker may deliver as soon as a subscription exists: a persistent MQTT session's queue, a Kafka group's
uncommitted offsets, a retained message. So a handler can run while ``start()`` still awaits its next
subscription, and an attribute ``start()`` sets only after its first ``subscribe`` is missing then: an
``AttributeError``, a ``handler_error`` dead letter, the message lost to the component (the pasta drill's
scheduler met exactly this with a heartbeat backlog after a restart).

:func:`late_state` reads a module's source (no import) and names every attribute that a handler
subscribed in ``start()`` reads, directly or through the class's own methods and properties, and that
``start()`` first sets after the line that subscribes that handler. A helper method ``start()`` calls
(``await self._subscribe_all()``) is read in its place, in the order of its own lines, a few calls deep: its
subscriptions and the attributes it sets count at the line of ``start()`` that calls it. Attributes set in
``__init__`` or in the class body count as made (the base ``Component``'s ``ctx``, ``params`` and ``name``
are made before ``start()``).
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
    #: the helpers start() calls that set the attribute, and that subscribe the handler (empty: start() itself)
    set_in: tuple[str, ...] = ()
    subscribed_in: tuple[str, ...] = ()

    def __str__(self) -> str:
        through = " -> ".join(self.path) + (f" -> self.{self.attribute}" if self.path else "")
        return (f"line {self.line}: {self.cls}.start() sets self.{self.attribute}{_via(self.set_in)} after "
                f"subscribing {self.handler} (line {self.subscribed_at}{_via(self.subscribed_in, ', ')}), which reads "
                f"it ({through}); a broker may deliver before start() returns: set it before subscribing")


def _via(helpers: tuple[str, ...], lead: str = " ") -> str:
    return f"{lead}in {' -> '.join(helpers)}" if helpers else ""


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
    first_set: dict[str, _Event] = {}  # attribute -> where start() first sets it
    subscribed: dict[str, _Event] = {}  # handler -> where start() first subscribes it
    for event in _events(start, methods, (), (start.name,)):
        (first_set if event.kind == "set" else subscribed).setdefault(event.name, event)
    problems = []
    reported: set[str] = set()
    for handler, sub in subscribed.items():
        for attribute, path in _reads(handler, methods).items():
            setting = first_set.get(attribute)
            if attribute in made or attribute in reported or setting is None or setting.at <= sub.at:
                continue
            reported.add(attribute)
            problems.append(LateState(cls.name, attribute, setting.at[0], sub.at[0], handler, path,
                                      setting.helpers, sub.helpers))
    return problems


#: how many helper calls deep start() is followed
HELPER_DEPTH = 4


@dataclass(frozen=True)
class _Event:
    """start() sets attribute ``name`` (``kind`` "set") or subscribes handler ``name`` ("subscribe") at ``at``:
    its line in start(), then its line in each helper called (lines compare in that order: one line is one
    moment, as in start() itself)."""

    kind: str
    name: str
    at: tuple[int, ...]
    helpers: tuple[str, ...]


def _events(method: Method, methods: dict[str, Method], at: tuple[int, ...],
            stack: tuple[str, ...]) -> list[_Event]:
    """What ``method`` sets and subscribes, in the order of its lines, each helper it calls in its place."""
    events: list[_Event] = []
    helpers = stack[1:]
    nodes = [n for n in ast.walk(method) if isinstance(n, (ast.Attribute, ast.Call))]
    for node in sorted(nodes, key=lambda n: (n.lineno, n.col_offset)):
        here = (*at, node.lineno)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.value, ast.Name) and node.value.id == "self":
            events.append(_Event("set", node.attr, here, helpers))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "subscribe":
                handler = _handler_name(node)
                if handler is not None:
                    events.append(_Event("subscribe", handler, here, helpers))
            elif isinstance(node.func.value, ast.Name) and node.func.value.id == "self" \
                    and node.func.attr in methods and node.func.attr not in stack and len(stack) <= HELPER_DEPTH:
                events.extend(_events(methods[node.func.attr], methods, here, (*stack, node.func.attr)))
    return events


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
