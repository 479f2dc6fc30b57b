"""Channels, their messages and the operations' bindings, from resolved flows.

A channel is one topic shape on one transport: ``forge/status/+`` (a subscription) and
``forge/status/{factory}`` (what a publisher fills at run time) are the same channel
``forge/status/{factory}``, whose wildcard level is a parameter. ``#`` (any number of levels)
becomes the parameter ``rest``; an AsyncAPI address cannot say "several levels", so its
description does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from forge_core.asyncapi.servers import KAFKA_BINDING, MQTT_BINDING, Wire
from forge_core.messages.schemas import MessageSchema

_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
REST = "rest"
#: CloudEvents attributes Forge sends with every message (binary mode), name -> description.
ATTRIBUTES = {
    "specversion": "CloudEvents spec version, 1.0",
    "id": "message id, unique per source",
    "source": "the publishing component instance",
    "type": "the message type (this message's name)",
    "time": "RFC 3339 UTC time of publication",
    "partitionkey": "the message key (partitioning extension), when it has one",
    "schemaversion": "version of the payload schema",
}
REQUIRED = ["specversion", "id", "source", "type"]


def shape(topic: str) -> tuple[str, ...]:
    """The channel identity of a topic or pattern: every variable level (``+``, ``{x}``, a level
    holding a placeholder) is ``+``; ``#`` stays."""
    return tuple("+" if level == "+" or "{" in level else level for level in topic.split("/"))


@dataclass
class Channel:
    id: str
    wire: Wire
    shape: tuple[str, ...]
    #: level index -> parameter name (taken from a publisher's ``{name}`` when one has it)
    names: dict[int, str] = field(default_factory=dict)
    types: dict[str, str | None] = field(default_factory=dict)  # message type -> key description

    def learn(self, topic: str) -> None:
        for index, level in enumerate(topic.split("/")):
            match = _PLACEHOLDER.match(level)
            if match and index not in self.names and match.group(1) not in self.names.values():
                self.names[index] = match.group(1)

    def parameter(self, index: int) -> str:
        if self.shape[index] == "#":
            return REST
        return self.names.get(index) or f"level{index + 1}"

    def address(self) -> str:
        levels = [f"{{{self.parameter(i)}}}" if level in ("+", "#") else level for i, level in enumerate(self.shape)]
        return self.wire.address("/".join(levels))

    def document(self, server_ref: str | None, messages: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address(), "messages": messages}
        params = {}
        for index, level in enumerate(self.shape):
            if level == "+":
                params[self.parameter(index)] = {"description": f"topic level {index + 1}, any value (MQTT `+`)"}
            elif level == "#":
                params[REST] = {"description": "the remaining topic levels, any number of them including none "
                                               "(MQTT `#`; '/' separates them)"}
        if params:
            out["parameters"] = params
        if server_ref is not None:
            out["servers"] = [{"$ref": server_ref}]
        out["x-forge-transport"] = self.wire.name
        out["x-forge-pattern"] = "/".join(self.shape)
        if self.wire.protocol == "kafka" and "+" not in self.shape and "#" not in self.shape:
            binding: dict[str, Any] = {"topic": self.address(), "bindingVersion": KAFKA_BINDING}
            topic_spec = (self.wire.get("topics") or {}).get("/".join(self.shape))
            if topic_spec is None:
                topic_spec = (self.wire.get("topics") or {}).get(self.address())
            if topic_spec is not None:
                get = topic_spec.get if isinstance(topic_spec, dict) else lambda k, d=None: getattr(topic_spec, k, d)
                binding["partitions"] = int(get("partitions", 1))
                binding["replicas"] = int(get("replication", 1))
            out["bindings"] = {"kafka": binding}
        return out


def safe_id(text: str) -> str:
    """A name AsyncAPI accepts as a map key and a ``$ref`` needs no escaping for."""
    return _UNSAFE.sub("_", text.replace("/", ".").replace("{", "").replace("}", "")).strip("_.") or "root"


def schema_format(schema: dict[str, Any]) -> str:
    """The AsyncAPI schemaFormat of a JSON Schema, from its ``$schema``."""
    declared = str(schema.get("$schema", ""))
    if "2020-12" in declared:
        return "application/schema+json;version=2020-12"
    if "2019-09" in declared:
        return "application/schema+json;version=2019-09"
    return "application/schema+json;version=draft-07"


def headers_schema(wire: Wire) -> dict[str, Any] | None:
    """The CloudEvents attributes as this wire carries them: Kafka ``ce_<name>`` record headers,
    MQTT 5 user properties (and Forge in process) by bare name; None when there are none."""
    if not wire.headers or wire.content_mode == "structured":
        return None
    prefix = "ce_" if wire.protocol == "kafka" else ""
    where = "Kafka record headers" if prefix else ("MQTT 5 user properties" if wire.protocol == "mqtt" else
                                                 "envelope attributes (in process)")
    return {
        "type": "object",
        "description": f"CloudEvents 1.0 attributes (binary content mode) as {where}; further headers carry "
                       "extensions such as W3C traceparent/tracestate and Forge's forgehops/forgeepoch",
        "properties": {prefix + name: {"type": "string", "description": text} for name, text in ATTRIBUTES.items()},
        "required": [prefix + name for name in REQUIRED],
        "additionalProperties": {"type": "string"},
    }


def message_of(schema: MessageSchema | None, type_: str, wire: Wire, key: str | None) -> dict[str, Any]:
    """A channel's message of type ``type_``: payload from its JSON Schema, CloudEvents headers."""
    body = schema.schema if schema is not None else {}
    title = str(body.get("title") or type_)
    message: dict[str, Any] = {"name": type_, "title": title, "contentType": "application/json"}
    if body.get("description"):
        message["summary"] = str(body["description"]).split("\n")[0][:200]
    headers = headers_schema(wire)
    if headers is not None:
        message["headers"] = headers
    if wire.content_mode == "structured" and wire.protocol is not None:
        message["contentType"] = "application/cloudevents+json"
        envelope = {"type": "object", "required": [*REQUIRED, "data"], "properties": {
            **{name: {"type": "string", "description": text} for name, text in ATTRIBUTES.items()},
            "data": {k: v for k, v in body.items() if k != "$schema"}}}
        if "$schema" in body:
            envelope["$schema"] = body["$schema"]
        message["payload"] = {"schemaFormat": schema_format(body), "schema": envelope}
    else:
        message["payload"] = {"schemaFormat": schema_format(body), "schema": body}
    if schema is None:
        message["description"] = f"no schema registers {type_!r} in this plant"
    else:
        # the file's name only: the document does not depend on where the plant is checked out
        origin = schema.origin.replace("\\", "/").rsplit("/", 1)[-1]
        message["x-forge-schema"] = {"version": schema.version, "plugin": schema.plugin, "origin": origin}
    if wire.protocol == "kafka":
        described = f"record key: {key}" if key else "record key: the message key, when the publisher gives one"
        message["bindings"] = {"kafka": {"key": {"type": "string", "description": described},
                                         "bindingVersion": KAFKA_BINDING}}
    elif wire.protocol == "mqtt" and headers is not None:
        message["bindings"] = {"mqtt": {"contentType": message["contentType"], "bindingVersion": MQTT_BINDING}}
    return message


def operation_bindings(wire: Wire, topic: str, action: str, groups: list[str]) -> dict[str, Any] | None:
    """MQTT: QoS and retain (the transport's per-topic QoS, never retained; a send's message
    expiry). Kafka: the consumer group(s) of a receive."""
    if wire.protocol == "mqtt":
        qos_for = wire.get("qos_for")
        qos = int(qos_for(topic)) if callable(qos_for) else int(wire.get("qos", 1))
        binding: dict[str, Any] = {"qos": qos, "retain": False, "bindingVersion": MQTT_BINDING}
        expiry_for = wire.get("expiry_for")
        expiry = expiry_for(topic) if callable(expiry_for) and action == "send" else None
        if expiry:
            binding["messageExpiryInterval"] = int(expiry)
        return {"mqtt": binding}
    if wire.protocol == "kafka" and action == "receive" and groups:
        group: dict[str, Any] = {"type": "string", "enum": sorted(set(groups))} if len(set(groups)) > 1 else \
            {"type": "string", "const": groups[0]}
        return {"kafka": {"groupId": group, "bindingVersion": KAFKA_BINDING}}
    return None
