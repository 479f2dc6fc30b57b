"""Attacks under the ACL: an edge node birthing or speaking for another, forged NCMD/DCMD, analytics'
data and forged STATE, and a Will on another node's topic; each refused or dropped, proven by delivery."""

from __future__ import annotations

import json
import time

import pytest
from forge_mqtt.pki import Pki
from forge_mqtt.testing import MosquittoServer
from oee_security_client import NOT_AUTHORIZED, STATE_ANALYTICS, Client, spb

pytestmark = pytest.mark.servers


def test_an_edge_node_cannot_birth_or_speak_for_another_node(broker: MosquittoServer, pki: Pki,
                                                             clients: list[Client]) -> None:
    """The issue's attack, at QoS 0 (Sparkplug's data QoS: no PUBACK to tell) and 1: edge-1 publishes
    edge-2's NBIRTH, NDATA and DBIRTH; the host receives none of it, and edge-1's own NBIRTH."""
    host = Client(broker, pki, ("client", "oee-analytics"))
    edge = Client(broker, pki, ("client", "edge-1"))
    clients += [host, edge]
    host.subscribe("spBv1.0/#")
    for qos in (0, 1):
        for topic in (spb("NBIRTH", "edge-2"), spb("NDATA", "edge-2"), spb("DBIRTH", "edge-2", "press")):
            assert edge.publish(topic, b"forged", qos=qos) == (NOT_AUTHORIZED if qos else 0)
    assert edge.publish(spb("NBIRTH", "edge-1"), b"own", qos=0) == 0
    host.wait_for({spb("NBIRTH", "edge-1")})
    time.sleep(0.3)
    assert host.got == [(spb("NBIRTH", "edge-1"), b"own", False)]


def test_a_forged_ncmd_never_reaches_the_node(broker: MosquittoServer, pki: Pki, clients: list[Client]) -> None:
    """edge-1 and the dashboard send edge-2 a rebirth NCMD and a DCMD: refused, edge-2 gets nothing;
    analytics' rebirth request and SCADA's DCMD arrive."""
    target = Client(broker, pki, ("client", "edge-2"))
    forgers = [Client(broker, pki, ("client", "edge-1")), Client(broker, pki, ("client", "oee-dashboard"))]
    analytics, scada = Client(broker, pki, ("client", "oee-analytics")), Client(broker, pki, ("client", "oee-scada"))
    clients += [target, *forgers, analytics, scada]
    target.subscribe(spb("NCMD", "edge-2"))
    target.subscribe(spb("DCMD", "edge-2") + "/+")
    for forger in forgers:
        for qos in (0, 1):
            assert forger.publish(spb("NCMD", "edge-2"), b"forged", qos=qos) == (NOT_AUTHORIZED if qos else 0)
            assert forger.publish(spb("DCMD", "edge-2", "press"), b"forged", qos=qos) == (NOT_AUTHORIZED if qos else 0)
    assert analytics.publish(spb("DCMD", "edge-2", "press"), b"forged") == NOT_AUTHORIZED  # analytics: no device writes
    assert analytics.publish(spb("NCMD", "edge-2"), b"rebirth", qos=0) == 0
    assert scada.publish(spb("DCMD", "edge-2", "press"), b"write", qos=0) == 0
    target.wait_for({spb("NCMD", "edge-2"), spb("DCMD", "edge-2", "press")})
    time.sleep(0.3)
    assert sorted(target.got) == [(spb("DCMD", "edge-2", "press"), b"write", False),
                                  (spb("NCMD", "edge-2"), b"rebirth", False)]


def test_analytics_publishes_no_data_only_its_state(broker: MosquittoServer, pki: Pki, clients: list[Client]) -> None:
    """Analytics' NDATA/DDATA/NBIRTH for a node are dropped; its retained STATE reaches an edge node that
    subscribes later (as Sparkplug 3.0 edge nodes wait for it); edge nodes cannot forge it."""
    dashboard = Client(broker, pki, ("client", "oee-dashboard"))
    analytics = Client(broker, pki, ("client", "oee-analytics"))
    clients += [dashboard, analytics]
    dashboard.subscribe("spBv1.0/#")
    for topic in (spb("NDATA", "edge-1"), spb("DDATA", "edge-1", "press"), spb("NBIRTH", "edge-1")):
        assert analytics.publish(topic, b"forged", qos=0) == 0
    state = json.dumps({"online": True, "timestamp": 1}).encode()
    assert analytics.publish(STATE_ANALYTICS, state, qos=1, retain=True) < 0x80
    forger = Client(broker, pki, ("client", "edge-2"))
    clients.append(forger)
    offline = json.dumps({"online": False, "timestamp": 2}).encode()
    assert forger.publish(STATE_ANALYTICS, offline, qos=1, retain=True) == NOT_AUTHORIZED
    dashboard.wait_for({STATE_ANALYTICS})
    time.sleep(0.3)
    assert dashboard.got == [(STATE_ANALYTICS, state, False)]
    edge = Client(broker, pki, ("client", "edge-1"))
    clients.append(edge)
    edge.subscribe(STATE_ANALYTICS)
    edge.wait_for({STATE_ANALYTICS})
    assert edge.got == [(STATE_ANALYTICS, state, True)]
    cleaner = Client(broker, pki, ("client", "oee-admin"))
    clients.append(cleaner)
    assert cleaner.publish(STATE_ANALYTICS, b"", retain=True) < 0x80  # leave no retained STATE for the other tests


def test_a_will_on_another_nodes_topic_is_dropped(broker: MosquittoServer, pki: Pki, clients: list[Client]) -> None:
    """The broker checks a Will against the ACL when it sends it: edge-1's Will on edge-2's NDEATH never
    arrives, its Will on its own NDEATH does."""
    host = Client(broker, pki, ("client", "oee-analytics"))
    clients.append(host)
    host.subscribe("spBv1.0/#")
    Client(broker, pki, ("client", "edge-1"), will=spb("NDEATH", "edge-2")).drop()
    time.sleep(0.5)
    Client(broker, pki, ("client", "edge-1"), will=spb("NDEATH", "edge-1")).drop()
    host.wait_for({spb("NDEATH", "edge-1")})
    time.sleep(0.3)
    assert host.topics() == {spb("NDEATH", "edge-1")}
