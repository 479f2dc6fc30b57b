"""The distributed profile's broker by role, on real Mosquitto (issue 11 §1): each identity may do
what its role needs and is refused everything else; anonymous clients are refused.

MQTT 5 makes a refused PUBLISH visible: PUBACK reason 0x87 (not authorized). Mosquitto's acl_file
grants every SUBSCRIBE and applies ``topic read`` at delivery, so reading is proven by delivery:
a client subscribed to ``#`` receives exactly the topics its role may read.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from forge_mqtt.testing import MosquittoServer
from paho.mqtt.reasoncodes import ReasonCode

pytestmark = pytest.mark.servers

ACL = Path(__file__).resolve().parents[1] / "security" / "mosquitto.acl"
USERS = {role: f"{role}-secret" for role in ("machine", "health", "bridge", "operator", "monitor")}


class Client:
    """A paho MQTT 5 client that waits for CONNACK/PUBACK/SUBACK and records deliveries."""

    def __init__(self, broker: MosquittoServer, user: str | None, password: str | None, client_id: str) -> None:
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        if user is not None:
            self.c.username_pw_set(user, password)
        self.acks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self.got: list[tuple[str, bytes]] = []
        self.connack: int | None = None
        self.cv = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message
        self.c.connect(broker.host, broker.port, keepalive=10)
        self.c.loop_start()
        with self.cv:
            self.cv.wait_for(lambda: self.connack is not None, timeout=5)

    def _on_connect(self, c, u, flags, rc: ReasonCode, props) -> None:
        with self.cv:
            self.connack = rc.value
            self.cv.notify_all()

    def _on_publish(self, c, u, mid: int, rc: ReasonCode, props) -> None:
        with self.cv:
            self.acks[mid] = rc.value
            self.cv.notify_all()

    def _on_subscribe(self, c, u, mid: int, rcs: list[ReasonCode], props) -> None:
        with self.cv:
            self.subacks[mid] = [r.value for r in rcs]
            self.cv.notify_all()

    def _on_message(self, c, u, msg: paho.MQTTMessage) -> None:
        with self.cv:
            self.got.append((msg.topic, msg.payload))
            self.cv.notify_all()

    def publish(self, topic: str, body: bytes = b'{"title": "x"}') -> int:
        """PUBACK reason code of a QoS 1 publish (0 = accepted, 0x87 = not authorized)."""
        mid = self.c.publish(topic, body, qos=1).mid
        with self.cv:
            assert self.cv.wait_for(lambda: mid in self.acks, timeout=5), f"no PUBACK for {topic}"
            return self.acks[mid]

    def subscribe(self, topic: str) -> int:
        _, mid = self.c.subscribe(topic, qos=1)
        with self.cv:
            assert self.cv.wait_for(lambda: mid in self.subacks, timeout=5), f"no SUBACK for {topic}"
            return self.subacks[mid][0]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("acl")
    acl = base / "test.acl"  # the plant's ACL plus a test-only writer of every topic (the delivery checks)
    acl.write_text(f"user test-admin\ntopic readwrite #\n\n{ACL.read_text()}")
    users = {**USERS, "test-admin": "admin-secret"}
    with MosquittoServer(users=users, acl_file=acl, base_dir=base / "broker") as server:
        yield server


def connect(broker: MosquittoServer, role: str, client_id: str | None = None) -> Client:
    client = Client(broker, role, USERS[role], client_id or f"pasta-{role}-test")
    assert client.connack == 0, f"{role} could not log in: CONNACK {client.connack}"
    return client


NOT_AUTHORIZED = 0x87

# role -> (topics it must be able to publish, topics it must be refused)
PUBLISH = {
    "machine": (["heartbeats", "productionPlan/bladeSwapped", "forge/death/pasta-machine-test"],
                ["productionPlan/assignBlade", "productionPlan/swapBlade", "updateManager/killMachine",
                 "sorting/changeFreshAmount", "forge/status/0", "forge/death/pasta-machine-1-m"]),
    "health": (["forge/status/0", "forge/death/pasta-health-test"],
               ["heartbeats", "productionPlan/assignBlade", "updateManager/killMachine"]),
    "bridge": (["productionPlan/assignBlade", "productionPlan/swapBlade", "forge/death/pasta-bridge-test"],
               ["updateManager/killMachine", "heartbeats", "forge/status/0", "forge/death/pasta-machine-0-m"]),
    "operator": (["updateManager/killMachine"], ["productionPlan/assignBlade", "productionPlan/swapBlade",
                                                 "heartbeats"]),
    "monitor": ([], ["productionPlan/assignBlade", "productionPlan/swapBlade", "updateManager/killMachine",
                     "heartbeats", "forge/status/0"]),
}
# role -> (topics whose messages it must receive, topics whose messages it must not)
READ = {
    "machine": (["productionPlan/assignBlade", "productionPlan/swapBlade", "updateManager/killMachine"],
                ["heartbeats", "forge/status/0", "sorting/changeFreshAmount", "productionPlan/bladeSwapped",
                 "forge/death/pasta-machine-1-m"]),
    "health": (["heartbeats", "forge/death/pasta-machine-0-m"], ["productionPlan/assignBlade",
                                                                 "updateManager/killMachine"]),
    "bridge": (["heartbeats", "productionPlan/bladeSwapped", "forge/death/pasta-machine-0-m", "forge/status/0"],
               ["updateManager/killMachine", "sorting/changeFreshAmount"]),
    "operator": (["updateManager/killMachine", "heartbeats", "productionPlan/assignBlade"], []),
    "monitor": (["productionPlan/assignBlade", "heartbeats", "forge/status/0", "updateManager/killMachine"], []),
}


@pytest.mark.parametrize("role", sorted(PUBLISH))
def test_publish_by_role(broker: MosquittoServer, role: str) -> None:
    allowed, refused = PUBLISH[role]
    client = connect(broker, role)
    try:
        accepted = {t: client.publish(t) for t in allowed}  # 0, or 0x10 "no matching subscribers"
        assert all(code < 0x80 for code in accepted.values()), accepted
        assert {t: client.publish(t) for t in refused} == dict.fromkeys(refused, NOT_AUTHORIZED)
    finally:
        client.close()


@pytest.mark.parametrize("role", sorted(READ))
def test_read_by_role(broker: MosquittoServer, role: str) -> None:
    readable, hidden = READ[role]
    client = connect(broker, role)
    admin = Client(broker, "test-admin", "admin-secret", "test-admin")
    try:
        assert client.subscribe("#") < 0x80
        for topic in readable + hidden:
            assert admin.publish(topic, topic.encode()) < 0x80
        with client.cv:
            client.cv.wait_for(lambda: {t for t, _ in client.got} >= set(readable), timeout=5)
        time.sleep(0.3)
        got = {t for t, _ in client.got}
        assert got >= set(readable), f"{role} did not receive {set(readable) - got}"
        assert not got & set(hidden), f"{role} received {got & set(hidden)}"
    finally:
        client.close()
        admin.close()


def test_anonymous_and_wrong_password_are_refused(broker: MosquittoServer) -> None:
    anonymous = Client(broker, None, None, "anon")
    wrong = Client(broker, "bridge", "guess", "guesser")
    try:
        assert anonymous.connack not in (None, 0)
        assert wrong.connack not in (None, 0)
    finally:
        anonymous.close()
        wrong.close()


def test_forged_command_never_reaches_a_machine(broker: MosquittoServer) -> None:
    """The issue's attack, by delivery: a machine subscribed to the commands gets the bridge's
    AssignBlade, and nothing of the same command published by a machine or a monitor identity."""
    machine = connect(broker, "machine", "pasta-machine-0-m")
    bridge = connect(broker, "bridge")
    forgers = [connect(broker, "machine", "pasta-machine-1-m"), connect(broker, "monitor")]
    try:
        assert machine.subscribe("productionPlan/swapBlade") == 1
        forged = b'{"title": "SwapBlade", "machineId": 0, "bladeType": "B", "epoch": 1000000000000}'
        for forger in forgers:
            assert forger.publish("productionPlan/swapBlade", forged) == NOT_AUTHORIZED
        real = b'{"title": "SwapBlade", "machineId": 0, "bladeType": "B", "epoch": 3}'
        assert bridge.publish("productionPlan/swapBlade", real) < 0x80
        deadline = time.monotonic() + 5
        with machine.cv:
            machine.cv.wait_for(lambda: machine.got, timeout=max(0.0, deadline - time.monotonic()))
        time.sleep(0.3)
        assert machine.got == [("productionPlan/swapBlade", real)]
    finally:
        for c in (machine, bridge, *forgers):
            c.close()
