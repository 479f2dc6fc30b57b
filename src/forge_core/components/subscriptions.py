"""``@subscribe``: marking handler methods, and the headers of a leader's fenced commands."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from forge_core.messages.envelope import Envelope

F = TypeVar("F", bound=Callable[..., Any])

_SUBSCRIBE_ATTR = "__forge_subscriptions__"

#: Headers a leader's commands carry (``ctx.publish_fenced``): its lease epoch and lease name.
EPOCH_HEADER = "forgeepoch"
LEASE_HEADER = "forgelease"


def epoch_of(envelope: Envelope) -> int | None:
    """The fencing epoch of a command: the ``forgeepoch`` header, else a payload ``epoch`` field
    (plain JSON clients cannot send headers)."""
    text = envelope.headers.get(EPOCH_HEADER)
    if text is not None:
        try:
            return int(text)
        except ValueError:
            return None
    payload = envelope.payload
    if isinstance(payload, dict) and isinstance(payload.get("epoch"), int):
        return int(payload["epoch"])
    return None


@dataclass(frozen=True)
class SubscriptionSpec:
    pattern: str
    types: tuple[str, ...] | None
    transport: str | None
    shared: bool
    fenced: bool | str = False
    batch: bool = False


def subscribe(pattern: str, *, types: list[str] | tuple[str, ...] | None = None, transport: str | None = None,
              shared: bool = True, fenced: bool | str = False, batch: bool = False) -> Callable[[F], F]:
    """Mark a method as the handler of messages on ``pattern`` (``+``/``#`` wildcards).

    ``types`` keeps only those message types. ``transport`` picks a transport other than the
    component's own. ``shared``: replicas of one component share the messages (each message to
    one replica), as a consumer group; ``False`` gives every replica every message.
    ``fenced``: the messages are a leader's commands; one stamped with an epoch older than the
    newest seen (or with none) is dropped and counted, never handled (see ``ctx.fence``). Give
    the lease name (``fenced="scheduler"``) to also refuse commands stamped for another lease;
    ``True`` takes the lease from each command's ``forgelease`` header. Once the component gives
    the lease a key (``ctx.fence.keys[lease] = key``; the leader's ``ctx.publish_fenced`` then
    signs with it), a command must also carry the holder's signature in its ``signature`` body
    field (``forge_core.tactics.sign_payload``); an unsigned or badly signed one is dropped and
    counted in ``ctx.fence.forged`` and leaves the fence alone.
    ``batch``: the method takes a list of envelopes, what the transport received together (see
    ``MessageBus.subscribe``); for high-rate streams, where a call per message costs too much.
    """
    if batch and fenced:
        raise ValueError(f"subscribe({pattern!r}): a batch handler cannot be fenced (fencing judges each "
                         f"command on its own); subscribe the commands without batch=True")

    def mark(method: F) -> F:
        specs = list(getattr(method, _SUBSCRIBE_ATTR, []))
        specs.append(SubscriptionSpec(pattern, tuple(types) if types else None, transport, shared, fenced, batch))
        setattr(method, _SUBSCRIBE_ATTR, specs)
        return method

    return mark


#: A class's @subscribe methods, found once: scanning dir() of the class on every start cost more than
#: the rest of a restart's bookkeeping (a chaos day starts ~6,300 lives). Weak: test classes come and go.
_DECORATED: weakref.WeakKeyDictionary[type, list[tuple[str, SubscriptionSpec]]] = weakref.WeakKeyDictionary()


def _decorated(cls: type) -> list[tuple[str, SubscriptionSpec]]:
    found = _DECORATED.get(cls)
    if found is None:
        found = [(attr, spec) for attr in dir(cls)
                 for spec in getattr(getattr(cls, attr, None), _SUBSCRIBE_ATTR, ())]
        _DECORATED[cls] = found
    return found
