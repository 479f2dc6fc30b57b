"""What the OEE line's broker security tests share: the shipped ACL and config, the roles, Sparkplug topic
names, and ``Client``, a paho MQTT 5 client over mutual TLS that waits for the broker's answers."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from forge_mqtt.pki import Pki
from forge_mqtt.testing import MosquittoServer
from paho.mqtt.reasoncodes import ReasonCode

SECURITY = Path(__file__).resolve().parents[2] / "security"
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

