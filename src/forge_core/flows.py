"""What a component publishes and subscribes, declared on its class, read without running it.

A component class lists its message flows as class attributes::

    class Processor(Component):
        publishes = (Publishes(SENSOR_ALERT, param="alert_topic", key="sensor_id"),)
        subscribes = (Subscribes(SENSOR_READING, param="topic"),)

A flow names its topic literally (``topic="storage/levels"``; a ``{name}`` level is filled at run
time, a ``+``/``#`` level is a subscription wildcard) or by the param that holds it
(``param="topics.created"``, a dotted path into the component's params; a list value gives one
flow per topic). ``Component.flows(params, transport=...)`` turns the declaration into
:class:`Flow` objects for one configured instance; ``forge asyncapi`` documents them and
``forge validate`` checks their message types. A component whose topics are computed (a bridge's
routes, a base topic plus a suffix) overrides ``flows``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["send", "receive"]


def _types_tuple(types: Any, what: str) -> tuple[str, ...]:
    if isinstance(types, str):
        return (types,)
    if isinstance(types, tuple) and all(isinstance(t, str) and t for t in types):
        return types
    raise TypeError(f"{what}: message types are a type name or a tuple of names (empty: any type), got {types!r}")


@dataclass(frozen=True)
class _Declared:
    #: The message type(s) on this topic: ``"mms.sensor_alert"`` or a tuple of names (``()``: any).
    types: tuple[str, ...] | str
    #: A literal topic or pattern (``{name}`` levels are filled at run time).
    topic: str | None = None
    #: Or the dotted path of the param holding the topic (or a list of topics).
    param: str | None = None
    #: What the message key is (its partition key / Kafka record key), for the reader.
    key: str | None = None
    #: The param naming the transport used, when it is not the component's own (a bridge's ``kafka``).
    transport_param: str | None = None
    description: str = ""
    #: The param listing the message types, when the configuration picks them (its value wins when set).
    types_param: str | None = None

    def __post_init__(self) -> None:
        kind = type(self).__name__
        object.__setattr__(self, "types", _types_tuple(self.types, kind))
        if (self.topic is None) == (self.param is None):
            raise TypeError(f"{kind}{self.types!r}: give exactly one of topic= (a literal topic) or param= (the "
                            f"param holding it)")


@dataclass(frozen=True)
class Publishes(_Declared):
    """A publication: ``Publishes("pasta.new_batch", topic="storage/newBatch")``."""


@dataclass(frozen=True)
class Subscribes(_Declared):
    """A subscription made in ``start`` (``@subscribe`` handlers declare themselves):
    ``Subscribes("sched.progress", param="topics.progress", shared=False)``."""

    #: Replicas share the messages (a consumer group), as ``ctx.subscribe(shared=...)``.
    shared: bool = True
    #: The param naming the consumer group, as ``ctx.subscribe(group=...)`` (default: the component's).
    group_param: str | None = None


@dataclass(frozen=True)
class Flow:
    """One resolved flow of a configured component instance."""

    action: Action
    topic: str
    types: tuple[str, ...]
    #: The transport's name in the manifest; None: the component's own.
    transport: str | None = None
    key: str | None = None
    shared: bool = True
    description: str = ""
    #: The consumer group named in ``ctx.subscribe(group=...)``; None: the component's own.
    group: str | None = None
    #: Where it was declared, for messages (``publishes[0]``, ``@subscribe on on_beat()``).
    origin: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


class FlowError(ValueError):
    """A declaration that does not resolve against the params (a missing or non-topic param)."""


def param_value(params: Any, path: str) -> Any:
    """``params`` (a Settings object or a dict) at the dotted ``path``; FlowError when absent."""
    value = params
    for part in path.split("."):
        if isinstance(value, Mapping):
            if part not in value:
                raise FlowError(f"param {path!r}: no {part!r} in the params")
            value = value[part]
        elif hasattr(value, part):
            value = getattr(value, part)
        else:
            raise FlowError(f"param {path!r}: no {part!r} in the params")
    return value


def resolve(declared: _Declared, params: Any, *, origin: str) -> list[Flow]:
    """The flows of one declaration for these params (none when the param is empty/None: the
    component does not publish or subscribe there in this configuration); FlowError naming
    ``origin`` when it does not resolve."""
    try:
        return _resolve(declared, params, origin)
    except FlowError as exc:
        raise FlowError(f"{origin} {type(declared).__name__}{declared.types!r}: {exc}") from None


def _resolve(declared: _Declared, params: Any, origin: str) -> list[Flow]:
    action: Action = "send" if isinstance(declared, Publishes) else "receive"
    if declared.topic is not None:
        topics: list[str] = [declared.topic]
    else:
        value = param_value(params, declared.param or "")
        if value is None or value == "" or value == []:
            return []
        if isinstance(value, str):
            topics = [value]
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            topics = list(value)
        else:
            raise FlowError(f"param {declared.param!r} holds {type(value).__name__}, not a topic or a "
                            f"list of topics")
    transport = None
    if declared.transport_param is not None:
        named = param_value(params, declared.transport_param)
        transport = named if isinstance(named, str) and named else None
    shared, group = True, None
    if isinstance(declared, Subscribes):
        shared = declared.shared
        if declared.group_param is not None:
            named = param_value(params, declared.group_param)
            group = named if isinstance(named, str) and named else None
    types = declared.types if isinstance(declared.types, tuple) else (declared.types,)
    if declared.types_param is not None:
        chosen = param_value(params, declared.types_param)
        if isinstance(chosen, str) and chosen:
            types = (chosen,)
        elif isinstance(chosen, list | tuple) and chosen:
            types = tuple(str(t) for t in chosen)
    return [Flow(action, topic, types, transport, declared.key, shared, declared.description, group, origin)
            for topic in topics]
