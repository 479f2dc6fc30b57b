"""The connection: reconnect and resubscribe after a broker restart, an absent broker is not ready,
username/password, TLS and mutual TLS, refusals that name the broker and the reason."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from forge_core import TransportError, TransportNotReady

from forge_mqtt import MqttRefused, MqttTransport
from forge_mqtt.testing import MosquittoServer, MosquittoTLS

pytestmark = pytest.mark.servers

@pytest.mark.slow
def test_subscriptions_are_restored_after_the_broker_restarts(broker: MosquittoServer, tmp_path: Path,
                                                              kit: Any) -> None:
    make_transport, envelope, until, Collector = kit.make_transport, kit.envelope, kit.until, kit.Collector

    async def body() -> None:
        sub = make_transport(broker, tmp_path / "sub", "sub")
        pub = make_transport(broker, tmp_path / "pub", "pub")
        await sub.connect()
        await pub.connect()
        inbox = Collector()
        await sub.subscribe("plant/+/temp", inbox)
        await pub.publish("plant/m1/temp", envelope({"n": 0}))
        await inbox.wait_for(1)

        broker.stop()
        await until(lambda: not sub.health().connected and not pub.health().connected, 5, lambda: "still connected")
        assert "reconnecting" in sub.health().detail
        broker.start()
        await until(lambda: sub.health().connected and pub.health().connected, 10,
                    lambda: f"sub: {sub.health().detail}; pub: {pub.health().detail}")
        await asyncio.sleep(0.2)  # the resubscription's SUBACK
        await pub.publish("plant/m2/temp", envelope({"n": 1}))
        await inbox.wait_for(2)
        assert inbox.payloads == [{"n": 0}, {"n": 1}]
        assert sub.health().stats["reconnects"] >= 1
        await sub.close()
        await pub.close()

    asyncio.run(body())


@pytest.mark.slow
def test_connect_to_an_absent_broker_is_not_ready(tmp_path: Path) -> None:
    from forge_core import TransportNotReady
    from forge_core.testing import find_free_port

    from forge_mqtt import MqttTransport

    async def body() -> None:
        transport = MqttTransport("edge", host="127.0.0.1", port=find_free_port(), data_dir=tmp_path)
        with pytest.raises(TransportNotReady, match=r"transport 'edge': cannot reach MQTT broker 127\.0\.0\.1:"):
            await transport.connect()
        await transport.close()

    asyncio.run(body())


def roundtrip(transport: MqttTransport, kit: Any) -> None:
    async def body() -> None:
        await transport.connect()
        try:
            inbox = kit.Collector()
            await transport.subscribe("secure/+", inbox)
            await transport.publish("secure/a", kit.envelope({"ok": True}))
            await inbox.wait_for(1, 5)
            assert inbox.payloads == [{"ok": True}]
        finally:
            await transport.close()

    asyncio.run(body())


@pytest.fixture
def password_broker(tmp_path: Path) -> Any:
    with MosquittoServer(users={"plant": "s3cret"}, base_dir=tmp_path / "pw") as server:
        yield server


def test_username_and_password(password_broker: MosquittoServer, tmp_path: Path, kit: Any) -> None:
    roundtrip(kit.make_transport(password_broker, tmp_path, "secure", username="plant", password="s3cret"), kit)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_wrong_password_names_broker_and_reason(password_broker: MosquittoServer, tmp_path: Path, kit: Any,
                                                protocol: str) -> None:
    transport = kit.make_transport(password_broker, tmp_path, "secure", username="plant", password="wrong",
                                   protocol=protocol)

    async def body() -> None:
        with pytest.raises(MqttRefused) as info:
            await transport.connect()
        await transport.close()
        return info.value

    error = asyncio.run(body())
    assert f"MQTT broker {password_broker.host}:{password_broker.port}" in str(error)
    assert "transport 'secure'" in str(error) and "CONNACK reason code" in str(error)
    assert error.code in (0x86, 0x87), error  # bad user name or password / not authorized
    assert "check username/password" in str(error)


def test_anonymous_is_refused_when_the_broker_wants_a_password(password_broker: MosquittoServer, tmp_path: Path,
                                                               kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(password_broker, tmp_path, "anon")
        with pytest.raises(MqttRefused, match="Not authorized"):
            await transport.connect()
        await transport.close()

    asyncio.run(body())


@pytest.fixture
def mtls_broker(tmp_path: Path, certs: Any) -> Any:
    tls = MosquittoTLS(certfile=certs.server_cert, keyfile=certs.server_key, cafile=certs.ca,
                       require_certificate=True)
    with MosquittoServer(users={"plant": "s3cret"}, tls=tls, base_dir=tmp_path / "tls") as server:
        yield server


def test_mutual_tls_with_password(mtls_broker: MosquittoServer, certs: Any, tmp_path: Path, kit: Any) -> None:
    transport = kit.make_transport(mtls_broker, tmp_path, "mtls", username="plant", password="s3cret",
                                   ca_file=str(certs.ca), cert_file=str(certs.client_cert),
                                   key_file=str(certs.client_key))
    assert transport.settings.tls is True and transport.settings.tls_insecure is False
    roundtrip(transport, kit)


def test_broker_certificate_from_an_unknown_ca_is_refused(mtls_broker: MosquittoServer, certs: Any,
                                                         tmp_path: Path, kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(mtls_broker, tmp_path, "mtls", username="plant", password="s3cret",
                                       ca_file=str(certs.other_ca), cert_file=str(certs.client_cert),
                                       key_file=str(certs.client_key))
        with pytest.raises(TransportError, match=r"TLS handshake with MQTT broker .* failed: .*CERTIFICATE_VERIFY"):
            await transport.connect()
        await transport.close()

    asyncio.run(body())


def test_missing_client_certificate_is_refused(mtls_broker: MosquittoServer, certs: Any, tmp_path: Path,
                                               kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(mtls_broker, tmp_path, "mtls", username="plant", password="s3cret",
                                       ca_file=str(certs.ca))
        with pytest.raises(TransportError, match=f"MQTT broker {mtls_broker.host}:{mtls_broker.port}"):
            await transport.connect()
        await transport.close()

    asyncio.run(body())


def test_plain_client_against_a_tls_listener_is_not_ready(mtls_broker: MosquittoServer, tmp_path: Path,
                                                          kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(mtls_broker, tmp_path, "plain", connect_timeout=1.0)
        with pytest.raises(TransportNotReady):
            await transport.connect()
        await transport.close()

    asyncio.run(body())
