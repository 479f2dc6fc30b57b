"""KafkaCluster(security="scram"): SASL/SCRAM-SHA-256 users and ACLs checked by KRaft's StandardAuthorizer.

A Forge transport reaches it with librdkafka's SASL settings through ``config:`` (as a manifest
would, the password from the environment); a principal is refused what it has no ACL for.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
from confluent_kafka import KafkaError, Producer
from forge_core import Envelope, TransportError
from forge_core.testing import ServerUnavailable

from forge_kafka import KafkaTransport
from forge_kafka.cluster import KafkaCluster
from forge_kafka.cluster_security import ScramSecurity

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(240)]


def test_scram_broker_properties_and_format_arguments() -> None:
    security = ScramSecurity({"sensors": "s3cret"})
    props = security.broker_properties({"PLAINTEXT": "127.0.0.1:1", "CONTROLLER": "127.0.0.1:2"})
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["advertised.listeners"] == "SASL://127.0.0.1:1"  # the controller port is not advertised
    assert "SCRAM-SHA-256=[name=sensors,password=s3cret]" in security.format_args()
    assert security.client_config("sensors")["sasl.username"] == "sensors"
    with pytest.raises(KeyError, match="no SCRAM user 'nobody'"):
        security.client_config("nobody")


def _produce(config: dict[str, object], topic: str, timeout_ms: int = 10000) -> KafkaError | None:
    errors: list[KafkaError | None] = []
    producer = Producer({**config, "message.timeout.ms": timeout_ms})
    producer.produce(topic, b"x", on_delivery=lambda error, _message: errors.append(error))
    producer.flush(timeout_ms / 1000 + 5)
    return errors[0] if errors else KafkaError(KafkaError._MSG_TIMED_OUT)


def test_a_principal_is_refused_topics_it_has_no_acl_for(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        cluster = KafkaCluster(1, security="scram", users={"sensors": "sensors-pw", "intruder": "intruder-pw"})
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    with cluster:
        admin = cluster.admin()  # the super user creates the topics
        from confluent_kafka.admin import NewTopic

        for future in admin.create_topics([NewTopic("sensor-data", 1, 1), NewTopic("alerts", 1, 1)]).values():
            future.result(30)
        cluster.grant("sensors", topics=["sensor-data"], groups=["processors"])

        # The transport as a manifest configures it: SASL through config:, the password from the environment.
        monkeypatch.setenv("SENSORS_PASSWORD", "sensors-pw")
        sasl = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-256",
                "sasl.username": "sensors", "sasl.password": os.environ["SENSORS_PASSWORD"]}

        async def publish(topic: str) -> None:
            transport = KafkaTransport("kafka", {"bootstrap": cluster.bootstrap, "config": sasl,
                                                 "confirm_publish": True, "create_topics": False},
                                       plant="secure")
            await transport.connect()
            try:
                await transport.publish(topic, Envelope("sensor.reading", {"v": 1}, "s1", uuid.uuid4().hex,
                                                        time.time(), None, 1, {}))
            finally:
                await transport.close()

        asyncio.run(publish("sensor-data"))  # allowed
        with pytest.raises(TransportError, match="(?i)authoriz"):
            asyncio.run(publish("alerts"))  # no ACL: refused, and said so

        intruder = cluster.client_config("intruder")
        refused = _produce(intruder, "sensor-data")
        assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused
        wrong = {**cluster.client_config("sensors"), "sasl.password": "guess"}
        failed = _produce(wrong, "sensor-data", timeout_ms=3000)
        assert failed is not None  # bad password: authentication fails, nothing is written
