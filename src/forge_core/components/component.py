"""The base class of plant components, and the checks its subclasses' runtime hooks get at definition."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any, ClassVar

from forge_core.checks import Check
from forge_core.components.context import ComponentContext
from forge_core.components.subscriptions import _SUBSCRIBE_ATTR, _decorated
from forge_core.flows import Flow, Publishes, Subscribes, resolve
from forge_core.settings import Settings

#: Methods of :class:`Component` the runtime calls: name -> whether it must be ``async def``.
_RUNTIME_HOOKS = {"start": True, "run": True, "stop": True, "report": False, "checks": False, "health": False}


def _hook_problem(method: Any, want_async: bool) -> str | None:
    if isinstance(method, staticmethod | classmethod | property):
        return f"is a {type(method).__name__}, not a method"
    if not callable(method):
        return f"is a {type(method).__name__} attribute, not a method"
    is_async = inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)
    if is_async and not want_async:
        return "is `async def`, but the runtime calls it without awaiting"
    if want_async and not is_async:
        return "is a plain `def`, but the runtime awaits it"
    try:
        parameters = list(inspect.signature(method).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    required = [p.name for p in parameters if p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        return f"takes required arguments ({', '.join(required)}), but the runtime passes none"
    return None


class Component:
    """Base class of plant components.

    Override what you need: ``start`` (subscribe, spawn loops), ``run`` (a long-running
    coroutine; returning is fine), ``stop`` (clean up; called on shutdown and before a
    restart). Methods decorated with :func:`subscribe` are subscribed once ``start`` has returned,
    so no handler runs on a half-built instance.
    """

    #: The params declaration: a :class:`~forge_core.settings.Settings` model. ``forge validate``
    #: checks the manifest against its schema and ``self.params`` is an instance, defaults filled.
    Params: ClassVar[type[Settings] | None] = None
    #: Or a plain JSON Schema of ``params``; ``self.params`` is then a dict with its defaults filled.
    params_schema: ClassVar[dict[str, Any] | None] = None
    #: What this component publishes: :class:`~forge_core.flows.Publishes` (types and topic) or bare
    #: type names; ``forge validate`` checks each type is registered (as it checks the ``types`` of
    #: every ``@subscribe``), ``forge asyncapi`` documents the topics. See :mod:`forge_core.flows`.
    publishes: ClassVar[tuple[str | Publishes, ...]] = ()
    #: The subscriptions ``start`` makes (``@subscribe`` handlers need no entry): ``Subscribes(...)``.
    subscribes: ClassVar[tuple[Subscribes, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse, at class definition, an override of a runtime hook that the runtime cannot call.

        ``report``, ``checks`` and ``health`` are called synchronously by the runtime (summary,
        ``/health``) and ``start``, ``run``, ``stop`` are awaited; an ``async def report`` written
        as a new method of one's own would otherwise surface only after the run, as a traceback.
        """
        super().__init_subclass__(**kwargs)
        for name, want_async in _RUNTIME_HOOKS.items():
            method = cls.__dict__.get(name)
            if method is None:
                continue
            problem = _hook_problem(method, want_async)
            if problem is not None:
                base = "async def" if want_async else "def"
                raise TypeError(
                    f"{cls.__module__}.{cls.__qualname__}.{name}: {problem}; {name!r} is a hook the runtime calls "
                    f"(`{base} {name}(self)`, see forge_core.Component). Override it with that signature, or give "
                    f"your own method another name")
        if isinstance(cls.__dict__.get("publishes"), str | list):
            raise TypeError(f"{cls.__module__}.{cls.__qualname__}.publishes: a tuple of message type names, "
                            f"e.g. publishes = ({cls.__dict__['publishes']!r},)"
                            if isinstance(cls.__dict__["publishes"], str) else
                            f"{cls.__module__}.{cls.__qualname__}.publishes: a tuple, not a list")
        for attr, kind in (("publishes", (str, Publishes)), ("subscribes", (Subscribes,))):
            declared = cls.__dict__.get(attr, ())
            wrong = [item for item in declared if not isinstance(item, kind)] if isinstance(declared, tuple) else \
                [declared]
            if wrong:
                names = " or ".join(k.__name__ for k in kind)
                raise TypeError(f"{cls.__module__}.{cls.__qualname__}.{attr}: a tuple of {names}, got {wrong[0]!r}")

    @classmethod
    def published_types(cls) -> list[str]:
        """Every message type ``publishes`` names."""
        return [t for item in cls.publishes for t in ((item,) if isinstance(item, str) else item.types)]

    @classmethod
    def flows(cls, params: Any) -> list[Flow]:
        """The flows of an instance configured with ``params`` (the built params: a Settings object
        or a dict): ``publishes``, ``subscribes`` and ``@subscribe`` handlers, resolved. Override
        (extending ``super().flows(params)``) when topics are computed from params."""
        found: list[Flow] = []
        for index, item in enumerate(cls.publishes):
            if isinstance(item, Publishes):
                found.extend(resolve(item, params, origin=f"publishes[{index}]"))
        for index, sub in enumerate(cls.subscribes):
            found.extend(resolve(sub, params, origin=f"subscribes[{index}]"))
        for attr in dir(cls):
            for spec in getattr(getattr(cls, attr, None), _SUBSCRIBE_ATTR, ()):
                found.append(Flow("receive", spec.pattern, spec.types or (), spec.transport, shared=spec.shared,
                                  origin=f"@subscribe on {attr}()"))
        return found

    @classmethod
    def uses_transports(cls, params: dict[str, Any], declared: Iterable[str]) -> set[str]:
        """Transports this component needs besides its own, so ``--only`` connects them too.

        Default: every top-level param whose value names a declared transport (a bridge's
        ``mqtt: mqtt, kafka: kafka``). Override for anything subtler."""
        names = set(declared)
        return {value for value in params.values() if isinstance(value, str) and value in names}

    def __init__(self, ctx: ComponentContext) -> None:
        self.ctx = ctx
        self.params = ctx.params

    @property
    def name(self) -> str:
        return self.ctx.name

    async def start(self) -> None:
        """Called once per (re)start, before decorated handlers are subscribed (they see its state)."""

    async def run(self) -> None:
        """Long-running work; the default does nothing."""

    async def stop(self) -> None:
        """Called on shutdown and before a restart."""

    def health(self) -> dict[str, Any]:
        """Extra detail for ``/health``; override to report component state."""
        return {}

    def report(self) -> dict[str, Any]:
        """What this component has to say in the run summary (``forge run`` prints it)."""
        return {}

    def checks(self) -> list[Check]:
        """Invariants checked over the run, for the summary; a failed one fails ``forge run``."""
        return []

    async def _subscribe_decorated(self) -> None:
        for attr, spec in _decorated(type(self)):
            await self.ctx.subscribe(spec.pattern, getattr(self, attr), types=spec.types,
                                     transport=spec.transport, shared=spec.shared, fenced=spec.fenced,
                                     batch=spec.batch)
