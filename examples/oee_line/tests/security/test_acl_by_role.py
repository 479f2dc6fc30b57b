"""The broker runs the shipped security options, and each role may publish and read what it must and is
refused the rest (MQTT 5 PUBACK 0x87 for a refused QoS 1 PUBLISH; reading proven by delivery on ``#``)."""

from __future__ import annotations

import time

import pytest
from forge_mqtt.pki import Pki
from forge_mqtt.testing import MosquittoServer
from oee_security_client import (
    ACL,
    CONF,
    GROUP,
    NOT_AUTHORIZED,
    STATE_ANALYTICS,
    STATE_SCADA,
    Client,
    shipped_options,
    spb,
)

pytestmark = pytest.mark.servers


def test_the_broker_runs_the_shipped_security_options(broker: MosquittoServer) -> None:
    config = broker.config_path.read_text().splitlines()
    for key, value in shipped_options().items():
        if key == "per_listener_settings":
            assert value == "false"  # Mosquitto's default: one ACL for the listener
            continue
        assert f"{key} {value}" in config, f"{key} {value} from {CONF.name} is not in the test broker's config"
    assert f"acl_file {ACL}" in config


# role -> (topics it must be able to publish, topics it must be refused)
PUBLISH: dict[str, tuple[list[str], list[str]]] = {
    "edge-1": ([spb("NBIRTH", "edge-1"), spb("NDATA", "edge-1"), spb("NDEATH", "edge-1"),
                spb("DBIRTH", "edge-1", "press"), spb("DDATA", "edge-1", "press"), spb("DDEATH", "edge-1", "press")],
               [spb("NBIRTH", "edge-2"), spb("NDATA", "edge-2"), spb("NDEATH", "edge-2"),
                spb("DBIRTH", "edge-2", "press"), spb("DDATA", "edge-2", "press"), spb("NCMD", "edge-2"),
                spb("NCMD", "edge-1"), spb("DCMD", "edge-2", "press"), spb("DCMD", "edge-1", "press"),
                STATE_ANALYTICS, STATE_SCADA, "spBv1.0/other/NBIRTH/edge-1", "plant/anything"]),
    "oee-analytics": ([STATE_ANALYTICS, spb("NCMD", "edge-1")],
                      [spb("NDATA", "edge-1"), spb("NBIRTH", "edge-1"), spb("DDATA", "edge-1", "press"),
                       spb("DCMD", "edge-1", "press"), STATE_SCADA, spb("NBIRTH", "oee-analytics"),
                       spb("NDATA", "oee-analytics"), spb("DBIRTH", "oee-analytics", "x"), "plant/anything"]),
    "oee-scada": ([STATE_SCADA, spb("NCMD", "edge-1"), spb("DCMD", "edge-1", "press")],
                  [spb("NDATA", "edge-1"), spb("NBIRTH", "edge-1"), STATE_ANALYTICS, spb("NBIRTH", "oee-scada"),
                   spb("DDATA", "oee-scada", "x")]),
    "oee-dashboard": ([], [spb("NCMD", "edge-1"), spb("DCMD", "edge-1", "press"), spb("NDATA", "edge-1"),
                           STATE_ANALYTICS, spb("NBIRTH", "oee-dashboard"), "plant/anything"]),
    "oee-admin": ([spb("NBIRTH", "edge-1"), spb("NCMD", "edge-1"), spb("DCMD", "edge-1", "press"), STATE_SCADA,
                   "plant/anything"], []),
}

ALL_TOPICS = sorted({t for allowed, refused in PUBLISH.values() for t in allowed + refused}
                    | {spb("DCMD", "edge-2", "press"), spb("DDEATH", "edge-1", "press")})
# role -> topics whose messages it must receive; every other topic of ALL_TOPICS it must not.
READ: dict[str, set[str]] = {
    "edge-1": {spb("NCMD", "edge-1"), spb("DCMD", "edge-1", "press"), STATE_ANALYTICS},
    "oee-analytics": {t for t in ALL_TOPICS if t.startswith("spBv1.0/") and "oee-analytics" not in t},
    "oee-scada": {t for t in ALL_TOPICS if t.startswith("spBv1.0/") and "oee-scada" not in t},
    "oee-dashboard": {t for t in ALL_TOPICS if t.startswith(f"spBv1.0/{GROUP}/") and "CMD" not in t
                      and "oee-dashboard" not in t} | {STATE_ANALYTICS, STATE_SCADA},
    "oee-admin": set(ALL_TOPICS),
}


@pytest.mark.parametrize("role", sorted(PUBLISH))
def test_publish_by_role(broker: MosquittoServer, pki: Pki, clients: list[Client], role: str) -> None:
    allowed, refused = PUBLISH[role]
    client = Client(broker, pki, ("client", role))
    clients.append(client)
    accepted = {t: client.publish(t) for t in allowed}  # 0, or 0x10 "no matching subscribers"
    assert all(code < 0x80 for code in accepted.values()), accepted
    assert {t: client.publish(t) for t in refused} == dict.fromkeys(refused, NOT_AUTHORIZED)


@pytest.mark.parametrize("role", sorted(READ))
def test_read_by_role(broker: MosquittoServer, pki: Pki, clients: list[Client], role: str) -> None:
    reader = Client(broker, pki, ("client", role))
    # One certificate, one connection: a second oee-admin connection would take the reader's session over.
    admin = reader if role == "oee-admin" else Client(broker, pki, ("client", "oee-admin"))
    clients += [reader, admin]
    reader.subscribe("#")
    for topic in ALL_TOPICS:
        assert admin.publish(topic, topic.encode()) < 0x80
    reader.wait_for(READ[role])
    time.sleep(0.3)
    got = reader.topics()
    assert got >= READ[role], f"{role} did not receive {READ[role] - got}"
    assert not got - READ[role], f"{role} received {got - READ[role]}"
