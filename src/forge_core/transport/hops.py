"""Marking an envelope with the transports it has crossed, so routes and bridges never loop it."""

from __future__ import annotations

from dataclasses import replace

from forge_core.messages.envelope import Envelope

__all__ = ["HOPS_HEADER", "cross"]

#: Header listing the transports an envelope has left, in order (routes and bridges).
HOPS_HEADER = "forgehops"


def cross(envelope: Envelope, source: str, target: str) -> Envelope | None:
    """A copy of ``envelope`` marked as having left ``source`` for ``target``, or None when it
    already came from ``target``: forwarding in opposite directions never loops a message."""
    hops = envelope.headers.get(HOPS_HEADER, "")
    path = hops.split(",") if hops else []
    if target in path:
        return None
    path.append(source)
    return replace(envelope, headers={**envelope.headers, HOPS_HEADER: ",".join(path)})
