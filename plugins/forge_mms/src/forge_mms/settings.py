"""Params JSON Schemas of the forge_mms components (validated by ``forge validate``)."""

from __future__ import annotations

from typing import Any

STORAGE_MONITOR_PARAMS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "interval": {"type": "number", "exclusiveMinimum": 0, "default": 10.0,
                     "description": "seconds between two evaluations of the stock levels"},
        "low": {"type": "number", "minimum": 0, "maximum": 100, "default": 20.0,
                "description": "a level below this percent is out of band"},
        "high": {"type": "number", "minimum": 0, "maximum": 100, "default": 80.0,
                 "description": "a level above this percent is out of band"},
        "min_change": {"type": "number", "minimum": 0, "default": 1.0,
                       "description": "another alert only when some level moved more than this (points) since "
                                      "the last alert"},
        "source": {"enum": ["messages", "database"], "default": "messages",
                   "description": "levels from pasta.storage_levels messages, or summed from the batches table"},
        "capacity": {"type": "number", "exclusiveMinimum": 0, "default": 100.0,
                     "description": "stock of one category that is 100 % (database source)"},
        "table": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "default": "batches",
                  "description": "the batches table (database source)"},
        "levels_topic": {"type": "string", "default": "storage/levels"},
        "alert_topic": {"type": "string", "default": "storage/alert"},
    },
}

THRESHOLD_ALERT_PARAMS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["topics", "field", "alert_type", "alert_topic"],
    "properties": {
        "topics": {"type": "array", "minItems": 1, "items": {"type": "string"},
                   "description": "where readings arrive (MQTT-style patterns)"},
        "types": {"type": ["array", "null"], "items": {"type": "string"}, "default": None,
                  "description": "message types that are readings (default: any on those topics)"},
        "field": {"type": "string", "pattern": "^(/.*)?$",
                  "description": "JSON pointer (RFC 6901) of the reading in the payload, e.g. /temperature"},
        "source_field": {"type": ["string", "null"], "pattern": "^(/.*)?$", "default": None,
                         "description": "JSON pointer of the sensor id in the payload (default: the envelope's "
                                        "source)"},
        "low": {"type": ["number", "null"], "default": None, "description": "below this is out of band"},
        "high": {"type": ["number", "null"], "default": None, "description": "above this is out of band"},
        "alert_type": {"type": "string", "minLength": 1,
                       "description": "message type of the alert; its schema belongs to the plant"},
        "alert_topic": {"type": "string", "minLength": 1,
                        "description": "where alerts go; {source} is replaced by the sensor id"},
        "min_interval": {"type": "number", "minimum": 0, "default": 10.0,
                         "description": "at least this many seconds between two alerts of one sensor"},
        "repeat_every": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                         "description": "while a sensor stays out of band, alert again this often (null: once)"},
        "payload": {"type": "object", "default": {
            "source": "{source}", "field": "{field}", "value": "{value}", "low": "{low}", "high": "{high}",
            "direction": "{direction}", "at": "{time}"},
            "description": "the alert payload; a string that is exactly one {placeholder} becomes its typed value "
                           "(source, field, value, low, high, direction, time, topic, type), others are formatted"},
    },
}


def with_defaults(schema: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` over the schema's top-level defaults (the runtime validates but does not fill)."""
    merged = {k: v["default"] for k, v in schema["properties"].items() if "default" in v}
    merged.update(params)
    return merged
