"""Mutual TLS with the certificate as the identity, on real Mosquitto (MosquittoTLS.mutual: CN = user
name, CRL) and the transport's client side: a verified certificate is all a client needs; an expired,
revoked, foreign-CA or missing certificate is refused with an error that names the TLS alert and the
file; the broker's certificate must match the address; a client id other than the CN is replaced by the
CN (use_username_as_clientid), so it takes no other client's session over; revocation and rotation
apply after a reload; a CRL past its next update locks everyone out."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from forge_core import TransportError, TransportNotReady

from forge_mqtt import MqttRefused
from forge_mqtt.pki import Pki
from forge_mqtt.testing import MosquittoServer, MosquittoTLS
from forge_mqtt.transport import connection as connection_module
from forge_mqtt.transport.tls_probe import refusal_alert

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"), ["edge-1", "edge-2", "watcher"], expired=["edge-1"],
                      revoked=["edge-3"], wrong_ca=["edge-1"])


@pytest.fixture(scope="module")
def identity_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    with MosquittoServer(tls=MosquittoTLS.mutual(pki), use_username_as_clientid=True,
                         base_dir=tmp_path_factory.mktemp("identity")) as server:
        yield server


def tls_settings(pki: Pki, folder: str, cn: str, **more: Any) -> dict[str, Any]:
    pair = getattr(pki, folder)(cn)
    return {"ca_file": str(pki.ca.cert), "cert_file": str(pair.cert), "key_file": str(pair.key),
            "client_id": cn, "connect_timeout": 5.0, **more}


def connected_as(broker: MosquittoServer, client_id: str, user: str) -> bool:
    """Mosquitto's log line of a CONNECT: "New client connected from ... as <client id> (p5, c1, k30, u'<user>')"."""
    lines = broker.log_path.read_text().splitlines()
    return any(f" as {client_id} (" in line and f"u'{user}'" in line for line in lines)


def test_the_certificate_is_the_identity(identity_broker: MosquittoServer, pki: Pki, tmp_path: Path, kit: Any) -> None:
    """No user name, no password: the verified certificate's CN is the user."""
    async def body() -> None:
        pub = kit.make_transport(identity_broker, tmp_path / "pub", "pub", **tls_settings(pki, "client", "edge-1"))
        sub = kit.make_transport(identity_broker, tmp_path / "sub", "sub", **tls_settings(pki, "client", "watcher"))
        await pub.connect()
        await sub.connect()
        inbox = kit.Collector()
        await sub.subscribe("plant/#", inbox)
        await asyncio.sleep(0.2)
        await pub.publish("plant/m1", kit.envelope({"n": 1}))
        await inbox.wait_for(1)
        assert inbox.payloads == [{"n": 1}]
        assert pub.settings.username is None and pub.settings.tls and not pub.settings.tls_insecure
        assert connected_as(identity_broker, "edge-1", "edge-1")
        await pub.close()
        await sub.close()

    asyncio.run(body())


@pytest.mark.parametrize(("folder", "cn", "alert"), [
    ("expired", "edge-1", "sslv3 alert certificate expired"),
    ("revoked", "edge-3", "sslv3 alert certificate revoked"),
    ("wrong_ca", "edge-1", "tlsv1 alert unknown ca"),
])
@pytest.mark.parametrize("alert_read_by_paho", [True, False], ids=["alert_read", "alert_lost"])
def test_a_bad_client_certificate_is_refused_naming_the_alert(identity_broker: MosquittoServer, pki: Pki,
                                                              tmp_path: Path, kit: Any, folder: str, cn: str,
                                                              alert: str, alert_read_by_paho: bool,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """alert_lost: under load the broker's reset can overtake its alert (CONNECT sent after the broker
    closed) and paho sees only a closed socket; made certain here by paho's alert line never matching.
    The transport then asks the broker again with a session that sends nothing, and names the alert."""
    if not alert_read_by_paho:
        monkeypatch.setattr(connection_module, "TLS_ALERT", re.compile(r"(?!x)x"))

    async def body() -> TransportError:
        transport = kit.make_transport(identity_broker, tmp_path, "bad", **tls_settings(pki, folder, cn))
        with pytest.raises(TransportError) as info:
            await transport.connect()
        await transport.close()
        return info.value

    error = asyncio.run(body())
    assert not isinstance(error, TransportNotReady | MqttRefused), "retrying cannot fix a refused certificate"
    assert f"MQTT broker {identity_broker.host}:{identity_broker.port} ended the TLS session" in str(error)
    assert repr(alert) in str(error) and str(getattr(pki, folder)(cn).cert) in str(error)


def test_the_refusal_probe_finds_no_alert_for_an_accepted_certificate_or_a_broker_away(
        identity_broker: MosquittoServer, pki: Pki) -> None:
    def context(folder: str) -> ssl.SSLContext:
        pair = getattr(pki, folder)("edge-1")
        made = ssl.create_default_context(cafile=str(pki.ca.cert))
        made.load_cert_chain(str(pair.cert), str(pair.key))
        return made

    host, port = identity_broker.host, identity_broker.port
    assert asyncio.run(refusal_alert(host, port, context("wrong_ca"), wait=2.0)) == "tlsv1 alert unknown ca"
    assert asyncio.run(refusal_alert(host, port, context("client"), wait=0.3)) is None, "accepted: no verdict"
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        away = spare.getsockname()[1]
    assert asyncio.run(refusal_alert("127.0.0.1", away, context("wrong_ca"), wait=0.3)) is None


def test_no_client_certificate_is_refused(identity_broker: MosquittoServer, pki: Pki, tmp_path: Path,
                                          kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(identity_broker, tmp_path, "nocert", ca_file=str(pki.ca.cert))
        # the alert when paho reads it before the closed socket, else the likely cause: a race of TLS 1.3
        with pytest.raises(TransportError, match=r"before CONNACK .*no client certificate \(cert_file unset\)"):
            await transport.connect()
        await transport.close()

    asyncio.run(body())


def test_the_broker_certificate_must_name_the_address(pki: Pki, tmp_path: Path, kit: Any) -> None:
    """The client checks the broker too: a certificate of the right CA for another host is refused
    (tls_insecure skips only that name check, never the chain)."""
    elsewhere = Pki.create(tmp_path / "pki", ["edge-1"], server_names=["broker.elsewhere"])

    async def body() -> None:
        with MosquittoServer(tls=MosquittoTLS.mutual(elsewhere), base_dir=tmp_path / "b") as broker:
            transport = kit.make_transport(broker, tmp_path / "c", "c", **tls_settings(elsewhere, "client", "edge-1"))
            with pytest.raises(TransportError, match=r"TLS handshake with MQTT broker .* failed: .*IP address "
                                                     r"mismatch"):
                await transport.connect()
            await transport.close()
            lax = kit.make_transport(broker, tmp_path / "l", "l",
                                     **tls_settings(elsewhere, "client", "edge-1", tls_insecure=True))
            await lax.connect()
            await lax.close()

    asyncio.run(body())


async def _takeover(broker: MosquittoServer, pki: Pki, tmp_path: Path, kit: Any) -> tuple[Any, Any, Any, Any]:
    """edge-2 connected with its Will; then a client holding edge-1's certificate asks for client id edge-2."""
    watch = kit.make_transport(broker, tmp_path / "w", "w", death_certificates=False,
                               **tls_settings(pki, "client", "watcher"))
    await watch.connect()
    inbox = kit.Collector()
    await watch.subscribe("forge/death/#", inbox)
    victim = kit.make_transport(broker, tmp_path / "v", "v", **tls_settings(pki, "client", "edge-2"))
    await victim.connect()
    impostor = kit.make_transport(broker, tmp_path / "i", "i",
                                  **tls_settings(pki, "client", "edge-1", client_id="edge-2"))
    await impostor.connect()
    return watch, inbox, victim, impostor


def test_a_client_id_other_than_the_cn_is_replaced_by_the_cn(identity_broker: MosquittoServer, pki: Pki,
                                                             tmp_path: Path, kit: Any) -> None:
    """Mosquitto cannot refuse client id != CN; use_username_as_clientid makes the CN the client id, so
    the impostor is edge-1 (as its certificate says) and edge-2's session and Will are untouched."""
    async def body() -> None:
        watch, inbox, victim, impostor = await _takeover(identity_broker, pki, tmp_path, kit)
        await asyncio.sleep(1.0)  # a takeover would have closed edge-2 and published its Will by now
        assert victim.health().connected and impostor.health().connected
        assert inbox.items == [], "edge-2's Will was published: its session was taken over"
        assert victim.health().stats["reconnects"] == 0
        assert connected_as(identity_broker, "edge-1", "edge-1")
        for transport in (impostor, victim, watch):
            await transport.close()

    asyncio.run(body())


def test_without_use_username_as_clientid_another_client_id_takes_the_session_over(pki: Pki, tmp_path: Path,
                                                                                    kit: Any) -> None:
    """Why the option is on: with mTLS alone, edge-1's certificate connecting as "edge-2" ends edge-2's
    session and the broker publishes edge-2's Will (on Sparkplug: a false NDEATH); the two then take the
    session from each other at every reconnect."""
    async def body() -> None:
        with MosquittoServer(tls=MosquittoTLS.mutual(pki), base_dir=tmp_path / "b") as broker:
            watch, inbox, victim, impostor = await _takeover(broker, pki, tmp_path, kit)
            await kit.until(lambda: inbox.items, 5, lambda: "no Will of edge-2")
            await impostor.close()
            assert {t for t, _ in inbox.items} == {"forge/death/edge-2"}
            assert connected_as(broker, "edge-2", "edge-1"), "the impostor was not connected as edge-2"
            for transport in (victim, watch):
                await transport.close()

    asyncio.run(body())


@pytest.fixture
def own_pki(pki: Pki, tmp_path: Path) -> Pki:
    """A copy of the module's PKI that a test may revoke in."""
    shutil.copytree(pki.root, tmp_path / "pki")
    return Pki(tmp_path / "pki")


def test_rotation_and_revocation_apply_to_new_connections_after_a_reload(own_pki: Pki, tmp_path: Path,
                                                                        kit: Any) -> None:
    """edge-2 gets a new key and certificate, the old one is revoked and the broker reloaded: a new
    connection with the old one is refused, while the connection made with it before the reload stays
    up (Mosquitto checks certificates at the handshake only) until the new certificate's connection
    takes the session over; its reconnects are then refused."""
    old = own_pki.client("edge-2")
    kept = tmp_path / "old"
    kept.mkdir()
    old_pair = {"cert_file": str(shutil.copy(old.cert, kept)), "key_file": str(shutil.copy(old.key, kept))}

    async def body() -> None:
        with MosquittoServer(tls=MosquittoTLS.mutual(own_pki), use_username_as_clientid=True,
                             base_dir=tmp_path / "b") as broker:
            before = kit.make_transport(broker, tmp_path / "a", "a",
                                        **{**tls_settings(own_pki, "client", "edge-2"), **old_pair})
            await before.connect()
            own_pki.issue("edge-2")
            own_pki.revoke(kept / "edge-2.pem")
            broker.reload()
            again = kit.make_transport(broker, tmp_path / "o", "o", **{**tls_settings(own_pki, "client", "edge-2"),
                                                                      **old_pair})
            with pytest.raises(TransportError, match="'sslv3 alert certificate revoked'"):
                await again.connect()
            await again.close()
            await asyncio.sleep(0.5)
            assert before.health().connected, "the connection made before the revocation was cut"
            renewed = kit.make_transport(broker, tmp_path / "n", "n", **tls_settings(own_pki, "client", "edge-2"))
            await renewed.connect()
            await kit.until(lambda: "certificate revoked" in before.health().detail, 10,
                            lambda: before.health().detail)
            assert renewed.health().connected and not before.health().connected
            await before.close()
            await renewed.close()

    asyncio.run(body())


def test_a_crl_past_its_next_update_locks_every_client_out(own_pki: Pki, tmp_path: Path, kit: Any) -> None:
    """OpenSSL then reports even a valid certificate as "certificate expired": refresh the CRL in time."""
    async def body() -> None:
        with MosquittoServer(tls=MosquittoTLS.mutual(own_pki), base_dir=tmp_path / "b") as broker:
            own_pki.refresh_crl(crl_days=0)  # next update: now
            await asyncio.sleep(1.1)
            broker.reload()
            valid = kit.make_transport(broker, tmp_path / "v", "v", **tls_settings(own_pki, "client", "edge-1"))
            with pytest.raises(TransportError, match="'sslv3 alert certificate expired'"):
                await valid.connect()
            await valid.close()
            own_pki.refresh_crl()
            broker.reload()
            fresh = kit.make_transport(broker, tmp_path / "f", "f", **tls_settings(own_pki, "client", "edge-1"))
            await fresh.connect()
            await fresh.close()

    asyncio.run(body())


def test_mutual_config_lines(pki: Pki, tmp_path: Path) -> None:
    server = MosquittoServer(tls=MosquittoTLS.mutual(pki, tls_version="tlsv1.3"), use_username_as_clientid=True,
                             base_dir=tmp_path / "b")
    server._prepare()
    lines = server.config_path.read_text().splitlines()
    for line in (f"cafile {pki.ca.cert}", f"certfile {pki.server.cert}", f"keyfile {pki.server.key}",
                 f"crlfile {pki.crl}", "require_certificate true", "use_identity_as_username true",
                 "use_username_as_clientid true", "tls_version tlsv1.3", "allow_anonymous false"):
        assert line in lines, line
    with pytest.raises(ValueError, match="use_identity_as_username needs require_certificate"):
        MosquittoTLS(certfile=pki.server.cert, keyfile=pki.server.key, use_identity_as_username=True)
