"""The protobuf bytes of an edge node's NDATA/DDATA, straight from its metric table's entries.

``encode(now, table.data(entries, historical=...), seq, datatype_of=table.datatype_of())`` byte for byte, without
a :class:`~forge_sparkplug.codec.payload.Metric` per entry and the general encoder's branches for what a DATA
never carries: every live update of a simulated day goes through here (the OEE line's chaos day, ~100,000 DATA).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from forge_sparkplug.codec.datatypes import FIELD, INT_RANGE, to_wire
from forge_sparkplug.node.metrics import Entry
from forge_sparkplug.proto.sparkplug_b_pb2 import Payload as _Payload

__all__ = ["data_body"]

#: no integer datatype: no int is written without to_wire
_NOT_INT = (0, 0, 0)


def data_body(timestamp: int, entries: Iterable[Entry], seq: int, *, historical: bool) -> bytes:
    """A DATA payload of ``entries`` (the table's, or copies with its alias and datatype): by alias when the entry
    has one, else by name and datatype, each with its value (``is_null`` for None) and timestamp, ``is_historical``
    when ``historical``. Raises ``DatatypeError`` (naming the metric) for a value its datatype cannot carry, as
    ``encode`` does."""
    message = _Payload()
    message.timestamp = timestamp
    message.seq = seq
    add = message.metrics.add
    limits = INT_RANGE
    for entry in entries:
        out = add()
        alias, datatype = entry.alias, entry.datatype
        if alias is not None:
            out.alias = alias  # name and datatype omitted [tck-id-payloads-alias-data-cmd-requirement]
        else:
            out.name = entry.name
            out.datatype = datatype
        if entry.timestamp is not None:
            out.timestamp = entry.timestamp
        if historical:
            out.is_historical = True
        value = entry.value
        wire: Any  # an int, float, bool, str or bytes (typed: inferred from the int branch alone, a compiled
        # data_body (mypyc) would take it for an int and refuse the str to_wire gives for a String metric)
        if value is None:
            out.is_null = True
        else:
            if type(value) is int and 0 <= value < limits.get(datatype, _NOT_INT)[1]:
                wire = value  # to_wire's answer for a non-negative int in its integer type's range, without the call
            else:  # named as encode names it: the alias when there is one (the DATA metric has no name then)
                wire = to_wire(datatype, value, alias if alias is not None else entry.name or "None")
            setattr(out, FIELD.get(datatype, "string_value"), wire)
    return message.SerializeToString()
