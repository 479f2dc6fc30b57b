"""Helpers on the shared broker; ``kafka_bootstrap`` itself comes from forge_kafka.testing (pytest11)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from forge_core import IdGenerator, RawMessage
from forge_core.transport import Decoder

from forge_kafka import KafkaTransport

#: Tansu holds a group join for about half the session timeout: keep both short in tests.
FAST: dict[str, Any] = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "metadata_refresh_ms": 500,
                        "retry_backoff": 0.01, "linger_ms": 1}


@pytest.fixture
def make_transport(kafka_bootstrap: str):
    """``make_transport(name, **settings)``: a KafkaTransport on the shared broker, fast group settings."""

    def make(name: str = "kafka", **settings: Any) -> KafkaTransport:
        return KafkaTransport(name, {"bootstrap": kafka_bootstrap, **FAST, **settings},
                              plant=f"t{uuid.uuid4().hex[:6]}")

    return make


def payload_of(topic: str, message: RawMessage) -> Any:
    """The payload of a raw record in either content mode, as the bus would decode it."""
    return Decoder(prefix="ce_", ids=IdGenerator(), clock_time=time.time).decode(topic, message.body,
                                                                                  message.headers).payload
