"""Birth and death certificates: the Will on ``forge/death/<client_id>``, the birth on
``forge/birth/<client_id>``, and the session sequence number (Sparkplug's ``bdSeq``) that lets a
host tell a current death from a stale one (:class:`DeathWatch`).

Every (re)connect attempt increments the sequence number (stored durably, so it rises across
process restarts too) and sets a Will carrying it; the birth after CONNACK carries the same number.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from forge_core import Clock, Envelope, TransportError
from forge_core.transport import CONTENT_TYPE, encode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from forge_mqtt.settings import MqttSettings

__all__ = ["BIRTH_TOPIC", "BIRTH_TYPE", "DEATH_TOPIC", "DEATH_TYPE", "Certificates", "DeathWatch", "safe_level"]

DEATH_TOPIC = "forge/death"
BIRTH_TOPIC = "forge/birth"
DEATH_TYPE = "forge.death"
BIRTH_TYPE = "forge.birth"


def safe_level(text: str) -> str:
    """``text`` as one topic level (no separators or wildcards)."""
    return text.replace("/", "_").replace("+", "_").replace("#", "_")


class DeathWatch:
    """Tells a current death certificate from a stale one, as Sparkplug hosts use ``bdSeq``.

    Feed it every ``forge.birth`` and ``forge.death`` payload (``{"source", "seq"}``). A death
    whose ``seq`` is lower than the latest birth of the same source belongs to an older session
    (the broker publishes an old Will when a reconnect takes the session over) and is ignored.
    """

    def __init__(self) -> None:
        self.births: dict[str, int] = {}
        self.alive: dict[str, bool] = {}

    def birth(self, payload: dict[str, Any]) -> None:
        source, seq = str(payload["source"]), int(payload["seq"])
        if seq >= self.births.get(source, -1):
            self.births[source] = seq
            self.alive[source] = True

    def death(self, payload: dict[str, Any]) -> bool:
        """Record a death; True if it is current (the source is now dead), False if stale."""
        source, seq = str(payload["source"]), int(payload["seq"])
        if seq < self.births.get(source, -1):
            return False
        self.alive[source] = False
        return True


class Certificates:
    """The certificates of one transport: its topics, its sequence number and their bodies."""

    def __init__(self, name: str, settings: MqttSettings, *, client_id: str, source: str, clock: Clock,
                 data_dir: Path) -> None:
        self.name = name
        self.enabled = settings.death_certificates
        self.v5 = settings.is_v5
        self.source = source
        self.clock = clock
        self.data_dir = data_dir
        self.death_topic = f"{DEATH_TOPIC}/{safe_level(client_id)}"
        self.birth_topic = f"{BIRTH_TOPIC}/{safe_level(client_id)}"
        self.seq = 0

    def load(self) -> None:
        """Read the last session's sequence number (before the first connect)."""
        if self.enabled:
            self.seq = self._read_seq()

    def set_will(self, client: mqtt.Client) -> None:
        """Every (re)connect attempt: a new session sequence number in the Will (bdSeq)."""
        if not self.enabled:
            return
        self.seq += 1
        self._write_seq(self.seq)
        body, props = self.body(DEATH_TYPE, PacketTypes.WILLMESSAGE)
        client.will_set(self.death_topic, body, qos=1, retain=False, properties=props)

    def publish_birth(self, client: mqtt.Client) -> None:
        if self.enabled:
            body, props = self.body(BIRTH_TYPE, PacketTypes.PUBLISH)
            client.publish(self.birth_topic, body, qos=1, properties=props)

    def publish_death(self, client: mqtt.Client) -> mqtt.MQTTMessageInfo:
        """The death certificate of a clean close (the broker will not send the Will)."""
        body, props = self.body(DEATH_TYPE, PacketTypes.PUBLISH)
        return client.publish(self.death_topic, body, qos=1, properties=props)

    def body(self, type_: str, packet_type: int) -> tuple[bytes, Properties | None]:
        payload = {"source": self.source, "seq": self.seq}
        envelope = Envelope(type_, payload, self.source, uuid.uuid4().hex, self.clock.time(), self.source)
        body, headers = encode(envelope, prefix="")
        if not self.v5:
            return body, None
        props = Properties(packet_type)
        props.ContentType = CONTENT_TYPE
        props.UserProperty = list(headers.items())
        return body, props

    def _seq_path(self) -> Path:
        return self.data_dir / f"mqtt-{self.name}.seq"

    def _read_seq(self) -> int:
        try:
            return int(self._seq_path().read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError as exc:
            raise TransportError(f"transport {self.name!r}: {self._seq_path()} is not a number: {exc}") from None

    def _write_seq(self, seq: int) -> None:
        path = self._seq_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            fh.write(str(seq))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
