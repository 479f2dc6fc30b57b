"""PUBLISH properties packed once (:class:`PackedProperties`) and MQTT's UTF-8 strings (:func:`utf8`).

paho's ``_send_publish`` reads nothing of a message's properties but ``pack()``
(tests/transport/test_paho_adapter.py pins it): :class:`PackedProperties` hands it bytes packed
directly, and the user properties CloudEvents repeats on every message of a stream are packed once.
"""

from __future__ import annotations

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties, VariableByteIntegers

__all__ = ["PackedProperties", "utf8"]


def utf8(text: str) -> bytes:
    """An MQTT UTF-8 string: two-byte length, then the bytes."""
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


#: User properties packed once: (name, value) -> bytes. Binary mode repeats four of its six CloudEvents
#: attributes (specversion, source, type, schemaversion) on every message of a stream; id and time
#: never repeat, so they are not kept.
_PAIRS: dict[tuple[str, str], bytes] = {}
_UNIQUE = frozenset({"id", "time"})
_MAX_PAIRS = 4096


class PackedProperties(Properties):
    """PUBLISH properties (message expiry, content type, CloudEvents user properties) packed once, directly.

    paho's generic ``Properties`` spends ~60 µs per message in attribute checks and packing;
    ``_send_publish`` only calls ``pack()``, so this subclass hands it the finished bytes.
    """

    # Properties checks every attribute name against the MQTT list; these are ours.
    __setattr__ = object.__setattr__

    def __init__(self, content_type: bytes, headers: dict[str, str], expiry: int | None = None) -> None:
        # no super().__init__: nothing else is read
        self.packetType = PacketTypes.PUBLISH
        parts = [content_type]
        if expiry is not None:  # Message Expiry Interval (0x02): a four-byte integer, seconds
            parts.insert(0, b"\x02" + expiry.to_bytes(4, "big"))
        pairs = _PAIRS
        for item in headers.items():
            pair = pairs.get(item)
            if pair is None:
                pair = b"\x26" + utf8(item[0]) + utf8(item[1])
                if item[0] not in _UNIQUE:
                    if len(pairs) >= _MAX_PAIRS:  # bounded: a source or type per message refills it
                        pairs.clear()
                    pairs[item] = pair
            parts.append(pair)
        body = b"".join(parts)
        self._packed = VariableByteIntegers.encode(len(body)) + body

    def pack(self) -> bytes:
        return self._packed

    def __str__(self) -> str:
        return f"[packed properties, {len(self._packed)} bytes]"
