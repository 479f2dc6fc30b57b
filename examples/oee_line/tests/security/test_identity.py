"""Who a client is: the certificate's CN, whatever client id it asks for; expired, revoked and foreign-CA
certificates get no session."""

from __future__ import annotations

import time

import pytest
from forge_mqtt.pki import Pki
from forge_mqtt.testing import MosquittoServer
from oee_security_client import NOT_AUTHORIZED, Client, spb

pytestmark = pytest.mark.servers


def test_a_client_id_other_than_the_cn_gets_the_cns_rights_and_nothing_of_the_other_client(
        broker: MosquittoServer, pki: Pki, clients: list[Client]) -> None:
    """Mosquitto cannot refuse a CONNECT whose client id differs from the CN; use_username_as_clientid
    makes the CN the client id instead. edge-1's certificate asking for "edge-2": it acts as edge-1 only,
    and the real edge-2's session (and its Will, a Sparkplug NDEATH) is untouched."""
    host = Client(broker, pki, ("client", "oee-analytics"))
    real = Client(broker, pki, ("client", "edge-2"), will=spb("NDEATH", "edge-2"))
    impostor = Client(broker, pki, ("client", "edge-1"), "edge-2")
    clients += [host, real, impostor]
    host.subscribe("spBv1.0/#")
    assert impostor.publish(spb("NBIRTH", "edge-2"), b"forged") == NOT_AUTHORIZED
    assert impostor.publish(spb("NBIRTH", "edge-1"), b"edge-1") < 0x80
    host.wait_for({spb("NBIRTH", "edge-1")})
    time.sleep(1.0)  # a session takeover would have closed edge-2 and sent its Will by now
    assert host.topics() == {spb("NBIRTH", "edge-1")}
    assert not real.closed and real.publish(spb("NDATA", "edge-2"), b"alive") < 0x80
    log = broker.log_path.read_text()
    assert " as edge-1 (" in log and " as edge-2 (p5, c1, k30, u'edge-1')" not in log


@pytest.mark.parametrize("cert", [("expired", "edge-1"), ("revoked", "edge-3"), ("wrong_ca", "edge-1")])
def test_a_bad_certificate_gets_no_session(broker: MosquittoServer, pki: Pki, clients: list[Client],
                                           cert: tuple[str, str]) -> None:
    client = Client(broker, pki, cert, expect_session=False)
    clients.append(client)
    assert client.connack is None and client.closed, "the broker let a refused certificate connect"
