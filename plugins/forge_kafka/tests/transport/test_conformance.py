"""forge_kafka keeps the transport contract, against a real Kafka-protocol broker (Tansu)."""

from __future__ import annotations

import uuid

import pytest
from forge_core.testing import TransportConformance
from forge_core.transport import Transport

from forge_kafka import KafkaTransport

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]


class TestKafkaTransport(TransportConformance):
    # A subscription does not need to be active before a publish: a new group starts at the
    # earliest offset and an anonymous one skips only records older than subscribe(). What takes
    # time is the group join (about half session.timeout.ms on Tansu) and, for wildcards, the
    # metadata refresh that finds topics created after subscribing.
    settle = 0.2
    delivery_timeout = 10.0
    quiet_period = 1.5  # a cancelled or partitioned-away consumer has had the time to show up

    @pytest.fixture(autouse=True)
    def _broker(self, kafka_bootstrap: str) -> None:
        self.bootstrap = kafka_bootstrap

    async def make_transport(self, name: str) -> Transport:
        return KafkaTransport(name, {"bootstrap": self.bootstrap, "session_timeout_ms": 2000,
                                     "heartbeat_interval_ms": 500, "metadata_refresh_ms": 500,
                                     "retry_backoff": 0.01, "linger_ms": 1}, plant=f"conf{uuid.uuid4().hex[:6]}")
