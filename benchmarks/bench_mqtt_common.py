"""What every side of ``bench_mqtt.py`` shares: the message, its schema and model, the load."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HEARTBEAT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["title", "machineId"],
    "properties": {
        "title": {"const": "heartbeat"},
        "machineId": {"type": "integer", "minimum": 0},
        "sent": {"type": "number"},
    },
    "additionalProperties": False,
}


class Heartbeat(BaseModel):
    """The same message as HEARTBEAT, as FastStream users declare it."""

    model_config = ConfigDict(extra="forbid")
    title: Literal["heartbeat"]
    machineId: int = Field(ge=0)  # the wire name
    sent: float = 0.0


def payload(n: int, sent: float = 0.0) -> dict[str, Any]:
    return {"title": "heartbeat", "machineId": n % 50, "sent": sent}


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())



#: A side's result: msg/s and client CPU µs per message.
Result = tuple[float, float]
