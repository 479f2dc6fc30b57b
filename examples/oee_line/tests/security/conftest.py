"""The OEE line's broker on real Mosquitto (issue 15, "Security on the broker"): mutual TLS with the
certificate's CN as user name and client id, and examples/oee_line/security/mosquitto.acl by role.

Each role may do what it must and is refused what it must not. MQTT 5 makes a refused QoS 1 PUBLISH
visible (PUBACK 0x87); a refused QoS 0 PUBLISH is dropped silently, so every attack is also checked by
delivery: a subscriber that may read the topic receives nothing. Mosquitto grants every SUBSCRIBE and
applies `read` rules at delivery, so reading is proven by what a client subscribed to `#` receives.
Certificates: expired, revoked and foreign-CA ones get no session; a client id other than the CN gets the
CN's rights and nothing of the other client's. Last, the real Sparkplug components run under the ACL.

Split by job: test_acl_by_role.py (the shipped options, what each role may publish and read),
test_attacks.py (forged births, commands, STATE and Wills), test_identity.py (client id versus CN, bad
certificates), test_sparkplug_under_acl.py (the real components). They share one PKI and one broker (the
fixtures below) and oee_security_client.py, put on ``sys.path`` here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # oee_security_client.py: importable (importlib mode)

from forge_mqtt.pki import Pki
from forge_mqtt.testing import MosquittoServer, MosquittoTLS
from oee_security_client import ACL, ROLES, Client, shipped_options


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"), ["edge-1", "edge-2", *ROLES], expired=["edge-1"],
                      revoked=["edge-3"], wrong_ca=["edge-1"])


@pytest.fixture(scope="session")
def broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    options = shipped_options()
    tls = MosquittoTLS.mutual(pki, tls_version=options["tls_version"])
    with MosquittoServer(tls=tls, use_username_as_clientid=True, acl_file=ACL, base_dir=tmp_path_factory.mktemp("b"),
                         extra_config="check_retain_source true") as server:
        yield server


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()
