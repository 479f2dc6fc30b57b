"""The shape of a structured event as Forge writes it, for msgspec (:meth:`Decoder.decode_structured
<forge_core.transport.decoder.Decoder.decode_structured>`).

A module of its own, never compiled: msgspec reads a Struct's annotations at run time, and a
class defined in a module mypyc compiles gets other annotations (``Any`` read as ``type``), so
every event would fail the shape and silently take the slower general path.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

__all__ = ["ForgeEvent"]

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class ForgeEvent(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A structured event with exactly the attributes Forge writes (``partitionkey`` optional),
    as :meth:`Decoder.decode_structured` reads it; ``data`` stays JSON text for ``orjson.loads``.
    Any other attribute (an extension), a missing one or a wrong type fails the decode, and the
    general path reads the event. ``specversion`` and ``datacontenttype`` are not checked (as
    before msgspec): any JSON value."""

    # in the order encode_structured writes them (``partitionkey``, optional, comes last here): msgspec
    # looks for each name first where the previous one left off (~400 instructions a record less
    # than another order; encode_structured_many's order costs no more)
    specversion: Any
    source: _NonEmpty
    type: _NonEmpty
    datacontenttype: Any
    schemaversion: str
    time: str
    id: _NonEmpty
    data: msgspec.Raw
    partitionkey: str | None = None
