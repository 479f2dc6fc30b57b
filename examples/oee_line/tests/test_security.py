"""The OEE line's broker on real Mosquitto (issue 15, "Security on the broker"): mutual TLS with the
certificate's CN as user name and client id, and examples/oee_line/security/mosquitto.acl by role.

Each role may do what it must and is refused what it must not. MQTT 5 makes a refused QoS 1 PUBLISH
visible (PUBACK 0x87); a refused QoS 0 PUBLISH is dropped silently, so every attack is also checked by
delivery: a subscriber that may read the topic receives nothing. Mosquitto grants every SUBSCRIBE and
applies `read` rules at delivery, so reading is proven by what a client subscribed to `#` receives.
Certificates: expired, revoked and foreign-CA ones get no session; a client id other than the CN gets the
CN's rights and nothing of the other client's. Last, the real Sparkplug components run under the ACL.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from forge_mqtt.pki import Pki
from forge_mqtt.testing import MosquittoServer, MosquittoTLS
from forge_sparkplug.codec import encode
from paho.mqtt.reasoncodes import ReasonCode

from forge_core.runtime import Runtime, load_plant

pytestmark = pytest.mark.servers

SECURITY = Path(__file__).resolve().parents[1] / "security"
ACL, CONF = SECURITY / "mosquitto.acl", SECURITY / "mosquitto.conf"
NOT_AUTHORIZED = 0x87
GROUP = "line1"
ROLES = ("oee-analytics", "oee-scada", "oee-dashboard", "oee-admin")


def spb(verb: str, node: str, device: str | None = None) -> str:
    return f"spBv1.0/{GROUP}/{verb}/{node}" + (f"/{device}" if device else "")


STATE_ANALYTICS, STATE_SCADA = "spBv1.0/STATE/analytics", "spBv1.0/STATE/scada"


class Client:
    """A paho MQTT 5 client over mutual TLS that waits for CONNACK/PUBACK/SUBACK and records deliveries."""

    def __init__(self, broker: MosquittoServer, pki: Pki, cert: tuple[str, str], client_id: str | None = None, *,
                 will: str | None = None, expect_session: bool = True) -> None:
        folder, cn = cert
        pair = getattr(pki, folder)(cn)
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or cn, protocol=paho.MQTTv5)
        context = ssl.create_default_context(cafile=str(pki.ca.cert))
        context.load_cert_chain(str(pair.cert), str(pair.key))
        self.c.tls_set_context(context)
        if will is not None:
            self.c.will_set(will, b"will", qos=1)
        self.acks: dict[int, int] = {}
        self.got: list[tuple[str, bytes, bool]] = []
        self.connack: int | None = None
        self.closed = False
        self.cv = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message
        self.c.connect(broker.host, broker.port, keepalive=30)
        self.c.loop_start()
        with self.cv:
            self.cv.wait_for(lambda: self.connack is not None or self.closed, timeout=10)
        if expect_session:
            assert self.connack == 0, f"{cn} could not connect: CONNACK {self.connack}, closed {self.closed}"

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        with self.cv:
            self.connack = rc.value
            self.cv.notify_all()

    def _on_disconnect(self, c: Any, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def _on_publish(self, c: Any, u: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        with self.cv:
            self.acks[mid] = rc.value
            self.cv.notify_all()

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: list[ReasonCode], props: Any) -> None:
        with self.cv:
            self.acks[mid] = rcs[0].value
            self.cv.notify_all()

    def _on_message(self, c: Any, u: Any, msg: paho.MQTTMessage) -> None:
        with self.cv:
            self.got.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.cv.notify_all()

    def publish(self, topic: str, body: bytes = b"x", qos: int = 1, retain: bool = False) -> int:
        """PUBACK reason code of a QoS 1 publish (0 / 0x10 accepted, 0x87 not authorized); 0 once a QoS 0
        publish is written (the broker says nothing either way)."""
        info = self.c.publish(topic, body, qos=qos, retain=retain)
        if qos == 0:
            info.wait_for_publish(5)
            return 0
        with self.cv:
            assert self.cv.wait_for(lambda: info.mid in self.acks, timeout=5), f"no PUBACK for {topic}"
            return self.acks[info.mid]

    def subscribe(self, topic: str) -> None:
        _, mid = self.c.subscribe(topic, qos=1)
        with self.cv:
            assert self.cv.wait_for(lambda: mid in self.acks, timeout=5), f"no SUBACK for {topic}"
            assert self.acks[mid] < 0x80, f"SUBACK {self.acks[mid]:#x} for {topic}"

    def topics(self) -> set[str]:
        with self.cv:
            return {t for t, _, _ in self.got}

    def wait_for(self, topics: set[str], timeout: float = 5.0) -> None:
        with self.cv:
            self.cv.wait_for(lambda: {t for t, _, _ in self.got} >= topics, timeout=timeout)

    def drop(self) -> None:
        """End as a killed process does: the socket closes without DISCONNECT, so the broker sends the Will."""
        self.c.loop_stop()
        sock = self.c.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"), ["edge-1", "edge-2", *ROLES], expired=["edge-1"],
                      revoked=["edge-3"], wrong_ca=["edge-1"])


def shipped_options() -> dict[str, str]:
    """mosquitto.conf's options that are not paths, addresses, persistence or logging."""
    skip = {"acl_file", "cafile", "certfile", "keyfile", "crlfile", "listener", "persistence", "persistence_location",
            "log_dest", "log_type", "connection_messages"}
    options = {}
    for line in CONF.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            if key not in skip:
                options[key] = value.strip()
    return options


@pytest.fixture(scope="module")
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


# -- the real Sparkplug components under the ACL ------------------------------------------------------------------
def mqtt_settings(broker: MosquittoServer, pki: Pki, cn: str) -> dict[str, Any]:
    pair = pki.client(cn)
    return {"host": broker.host, "port": broker.port, "ca_file": str(pki.ca.cert), "cert_file": str(pair.cert),
            "key_file": str(pair.key), "keepalive": 5, "reconnect_min_delay": 0.5, "reconnect_max_delay": 1.0}


async def until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def test_sparkplug_components_work_under_the_acl(broker: MosquittoServer, pki: Pki, clients: list[Client],
                                                 tmp_path: Path) -> None:
    """sparkplug.edge_node edge-1 (client id = CN = node id), the primary host "analytics" and the host
    "scada", each with its own certificate: the node births once analytics' STATE is online, analytics
    receives its data, a seq gap makes analytics ask for a rebirth (an NCMD) and the node births again,
    SCADA's DCMD becomes a sparkplug.write at the node, and analytics' DCMD is dropped by the broker."""
    wire = Client(broker, pki, ("client", "oee-admin"), "oee-admin-wire")
    clients.append(wire)
    wire.subscribe("spBv1.0/#")
    components = {
        "edge": {"type": "sparkplug.edge_node", "params": {
            "mqtt": mqtt_settings(broker, pki, "edge-1"), "group": GROUP, "node": "edge-1", "client_id": "edge-1",
            "primary_host": "analytics", "metrics": [{"name": "Uptime", "datatype": "Int64", "initial": 0}],
            "devices": {"press": {"metrics": [{"name": "Speed", "datatype": "Double", "initial": 0.0}]}}}},
        "analytics": {"type": "sparkplug.host", "params": {
            "mqtt": mqtt_settings(broker, pki, "oee-analytics"), "host_id": "analytics", "client_id": "oee",
            "groups": [GROUP], "reorder_timeout": 0.5}},
        "scada": {"type": "sparkplug.host", "params": {
            "mqtt": mqtt_settings(broker, pki, "oee-scada"), "host_id": "scada", "client_id": "oee", "groups": [GROUP],
            "commands_topic": "scada/command", "data_topic": "scada/data", "state_topic": "scada/state"}},
    }
    manifest = {"version": 1, "plant": {"name": "oee_security"}, "plugins": ["sparkplug"],
                "transports": {"bus": {"type": "memory"}}, "default_transport": "bus",
                "tactics": {"leader": {"use": "memory", "ttl": 10.0, "renew_every": 1.0, "retry_every": 0.2}},
                "components": components, "runtime": {"health": False}}
    (tmp_path / "plant.yaml").write_text(json.dumps(manifest))

    def births() -> list[bytes]:
        return [body for topic, body, _ in wire.got if topic == spb("NBIRTH", "edge-1")]

    async def body() -> None:
        plugins, loaded = load_plant(tmp_path / "plant.yaml")
        runtime = Runtime(loaded, plugins, serve_health=False, data_dir=tmp_path / ".forge")
        seen: list[Any] = []
        await runtime.start()
        try:
            await runtime.bus.subscribe("#", seen.append, owner="test")
            await until(lambda: births(), 20, "edge-1's NBIRTH")
            await until(lambda: any(e.type == "sparkplug.metrics" and e.topic.startswith("sparkplug/data/")
                                    for e in seen), 10, "analytics' sparkplug.metrics of the birth")
            # A seq gap (admin may publish anything): analytics asks for a rebirth, the node births again.
            wire.publish(spb("NDATA", "edge-1"), encode(int(time.time() * 1000), [], seq=200), qos=0)
            await until(lambda: len(births()) >= 2, 15, "a rebirth after analytics' NCMD")
            assert spb("NCMD", "edge-1") in wire.topics()
            # Commands: SCADA's DCMD is written at the node; analytics' is dropped by the broker.
            command = {"group": GROUP, "node": "edge-1", "device": "press",
                       "metrics": [{"name": "Speed", "value": 1.5, "datatype": "Double"}]}
            await runtime.bus.publish("sparkplug/command/x", "sparkplug.command", command, source="test")
            await asyncio.sleep(1.0)
            assert not [e for e in seen if e.type == "sparkplug.write"], "analytics' DCMD reached the node"
            await runtime.bus.publish("scada/command/x", "sparkplug.command", command, source="test")
            await until(lambda: [e for e in seen if e.type == "sparkplug.write"], 10, "SCADA's write at the node")
            write = next(e for e in seen if e.type == "sparkplug.write")
            assert write.payload["device"] == "press" and write.payload["metrics"][0]["value"] == 1.5
            assert [t for t, _, _ in wire.got].count(spb("DCMD", "edge-1", "press")) == 1  # SCADA's only
            # link_proof under the ACL: the node's UNSUBSCRIBE of a filter it may not read is still answered
            edge = runtime.supervisors["edge"].instance
            await runtime.bus.publish(f"sparkplug/update/{GROUP}/edge-1", "sparkplug.metric_update",
                                      {"metrics": [{"name": "Uptime", "value": 5}]}, source="test")
            await until(lambda: edge.stats["link_proofs"] >= 1 and not edge.unproven, 15, "the DATA proven read")
        finally:
            await runtime.stop()

    asyncio.run(body())
