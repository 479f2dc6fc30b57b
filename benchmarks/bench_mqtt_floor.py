"""The design's floor of work per message, for ``bench_mqtt.py``'s "design floor" sides: what
../shared/DESIGN.md asks of every message crossing a transport (an envelope with its CloudEvents
attributes, every message validated, a malformed one dead-lettered), in its cheapest straightforward
form, done by a raw client without Forge (no bus, no transport, no registry; forge_core's ``Envelope``
and ``format_time`` only).

On publish (:func:`publish_work`), per message: one jsonschema-rs check of the payload (``is_valid``;
``validate`` only to raise for one that fails), then the envelope's attributes written straight into
its structured CloudEvents event, byte for byte the body Forge's structured mode writes
(``encode_structured``: specversion, source, type, datacontenttype, schemaversion, time, id, data):
the attributes a stream shares written once per run, joined per message to the time's text
(``time.time()`` by ``format_time``, whose date and clock part is kept per second), ``orjson.dumps``
of the id (a per-run prefix and the message number) and of the payload. The same bytes on the wire,
so the sockets carry what Forge's side carries. No ``Envelope`` object is built on this side: the
attributes go straight into the body.

On receipt (:func:`receive_work`), per message: one msgspec parse of the whole event into a struct
(the attributes as str, the time parsed to a datetime in C, the data as any JSON: one pass, cheaper
than ``orjson.loads`` of the event, ~4 k instructions, or Forge's two parses); the payload checked
once; one forge_core ``Envelope`` (its class called, the time as seconds since 1970) handed to a
handler. A body that is not such an event (not JSON, an attribute missing or not a string, a bad time,
a payload failing the check) takes the dead-letter branch, never taken here (no such body is sent).

Not done, though Forge does it (Forge's own cost above the floor): the bus's publish and delivery
(admission, stats, routing, the schema looked up by type, trace context), an ``Envelope`` object on
publish, the content mode's sniffing and extension attributes on receipt, the envelope's topic read
from the packet (the floor's one subscription names it: a constant), and on MQTT 5 the subscription
identifier and reading the Content Type on receipt (its publisher does write it:
:data:`STRUCTURED_PROPERTIES`).

Measured (stop 44, cachegrind, ``bench_mqtt_paths.py``, (I(16000) - I(1000)) / 15,000): the floor 159.8 k
instructions a message on 3.1.1 (162.4 k on MQTT 5) against the best raw side's 137.6 k: **0.861**. Of the
floor's ~22 k over the raw side, publish ~9.7 k (the check ~2 k, the time's text ~2.3 k, the id, the join),
receipt ~12 k (the event's parse, the check, the ``Envelope`` with its float time ~5.2 k; in a loop of the
pieces alone). A floor handing the parsed struct itself as the envelope (no forge_core ``Envelope``, the
time left a datetime) would be ~154.6 k: 0.89, still under the 0.9 line (~152.9 k).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jsonschema_rs
import msgspec
import orjson
from bench_mqtt_common import HEARTBEAT, payload  # benchmarks/ is on sys.path when run as a script
from forge_mqtt.transport.paho_adapter import PackedProperties, utf8

from forge_core import Envelope, format_time
from forge_core.messages.envelope import NO_HEADERS
from forge_core.transport import STRUCTURED_CONTENT_TYPE

__all__ = ["HEAD", "STRUCTURED_PROPERTIES", "Event", "publish_work", "receive_work"]

#: The attributes every event of the stream shares, as ``encode_structured`` writes them, up to the time's text.
HEAD = (
    b'{"specversion":"1.0","source":"machine","type":"pasta.heartbeat","datacontenttype":"application/json",'
    b'"schemaversion":"1","time":"'
)
#: MQTT 5: the Content Type property of a structured event, packed once (what Forge's publisher sends).
STRUCTURED_PROPERTIES = PackedProperties(b"\x03" + utf8(STRUCTURED_CONTENT_TYPE), {})


class Event(msgspec.Struct, gc=False):
    """A structured CloudEvents event as the floor reads it: the attributes Forge writes."""

    specversion: str
    source: str
    type: str
    datacontenttype: str
    schemaversion: str
    time: datetime
    id: str
    data: Any
    partitionkey: str | None = None


def publish_work() -> Callable[[int], bytes]:
    """The body of message ``n`` with the design's work on publish (see the module docstring)."""
    is_valid, validate = _checks()
    prefix = f"{uuid.uuid4().hex[:12]}-"
    dumps, join, now = orjson.dumps, b"".join, time.time

    def encode(n: int) -> bytes:
        data = payload(n)
        if not is_valid(data):
            validate(data)  # raises, naming the field
        return join(
            (HEAD, format_time(now()).encode(), b'","id":', dumps(prefix + str(n)), b',"data":', dumps(data), b"}")
        )

    return encode


def receive_work(
    topic: str, handler: Callable[[Envelope], object], dead_letter: Callable[[bytes, Exception], object]
) -> Callable[[bytes], None]:
    """What is done with a received body (see the module docstring): its envelope to ``handler``, or
    the body and the reason to ``dead_letter``."""
    is_valid, validate = _checks()
    decode = msgspec.json.Decoder(Event).decode

    def receive(body: bytes) -> None:
        try:
            event = decode(body)
            data = event.data
            if not is_valid(data):
                validate(data)  # raises, naming the field
            version = event.schemaversion
            envelope = Envelope(
                event.type,
                data,
                event.source,
                event.id,
                event.time.timestamp(),
                event.partitionkey,
                1 if version == "1" else int(version),
                NO_HEADERS,
                topic,
            )
        except (msgspec.MsgspecError, ValueError) as exc:  # (jsonschema-rs's errors are ValueErrors)
            dead_letter(body, exc)
            return
        handler(envelope)

    return receive


def _checks() -> tuple[Callable[[Any], bool], Callable[[Any], None]]:
    validator = jsonschema_rs.validator_for(HEARTBEAT)
    return validator.is_valid, validator.validate
