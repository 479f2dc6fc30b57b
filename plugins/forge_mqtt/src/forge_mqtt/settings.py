"""Settings of ``transports.<name>.settings`` for ``type: mqtt``: the JSON Schema the manifest is
checked against, and the typed :class:`MqttSettings` the transport reads.

The schema is the single source of defaults shown in ``forge validate`` and the docs; the
dataclass repeats them so a transport built in code (tests, benchmarks) gets the same ones.
Secrets (``password``, ``key_password``) come from the environment with ``${env:VAR}``: the
manifest loader substitutes them and refuses literal values under those keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from forge_core import TransportError
from forge_core.transport import CONTENT_MODES, matches, validate_pattern

__all__ = ["SETTINGS_SCHEMA", "MqttSettings"]

_QOS = {"type": "integer", "enum": [0, 1]}

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "host": {"type": "string", "default": "localhost", "description": "broker host name or address"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 1883,
                 "description": "broker port (8883 is the usual TLS port)"},
        "protocol": {"enum": ["5", "3.1.1", 5], "default": "5",
                     "description": "MQTT 5 (attributes as user properties) or 3.1.1 (plain JSON body)"},
        "content_mode": {"enum": ["binary", "structured"], "default": "binary",
                         "description": "CloudEvents content mode of published messages: binary (plain JSON body, "
                                        "attributes as MQTT 5 user properties; on 3.1.1 the body alone) or "
                                        "structured (one JSON event, every attribute kept, on 3.1.1 too); "
                                        "received messages are read in either"},
        "client_id": {"type": ["string", "null"], "default": None,
                      "description": "MQTT client id; default forge-<plant>-<transport>[-<instance>]. Unique per "
                                     "process and stable across its restarts (the broker keys the session on it)"},
        "instance": {"type": ["string", "null"], "default": None,
                     "description": "process identity appended to the default client id, for several processes "
                                    "of one plant (e.g. ${env:HOSTNAME})"},
        "source": {"type": ["string", "null"], "default": None,
                   "description": "source named in birth/death certificates; default the client id"},
        "qos": {**_QOS, "default": 1, "description": "QoS of publishes and subscriptions"},
        "qos_by_topic": {"type": "object", "additionalProperties": _QOS, "default": {},
                         "description": "topic pattern -> QoS; first matching pattern wins over qos"},
        "keepalive": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 30,
                      "description": "seconds; the broker declares the client dead after 1.5x this"},
        "connect_timeout": {"type": "number", "exclusiveMinimum": 0, "default": 5.0,
                            "description": "seconds to wait for TCP/TLS connect and then for CONNACK"},
        "reconnect_min_delay": {"type": "number", "exclusiveMinimum": 0, "default": 0.5,
                                "description": "first reconnect delay, seconds; doubles per failed attempt"},
        "reconnect_max_delay": {"type": "number", "exclusiveMinimum": 0, "default": 30.0,
                                "description": "cap of the reconnect delay, seconds"},
        "session_expiry": {"type": "integer", "minimum": 0, "maximum": 4294967295, "default": 0,
                           "description": "MQTT 5 session expiry, seconds; >0 keeps subscriptions and queued "
                                          "QoS 1 messages at the broker across reconnects and broker restarts "
                                          "(3.1.1: clean_session=false)"},
        "clean_start": {"type": ["boolean", "null"], "default": None,
                        "description": "discard the broker's session of this client id at connect; default "
                                       "false when session_expiry > 0 (resume it), true otherwise"},
        "max_inflight": {"type": "integer", "minimum": 1, "maximum": 65000, "default": 1000,
                         "description": "QoS 1 publishes awaiting PUBACK; publish waits when reached"},
        "max_redeliveries": {"type": "integer", "minimum": 0, "default": 3,
                             "description": "local redeliveries to a raising callback before giving up"},
        "outbox": {"type": "boolean", "default": True,
                   "description": "store publishes made while disconnected in <data_dir>/outbox-<name>.db"},
        "outbox_max_bytes": {"type": "integer", "minimum": 1, "default": 104857600,
                             "description": "size limit of the outbox; beyond it publish raises OutboxFull"},
        "death_certificates": {"type": "boolean", "default": True,
                               "description": "Will on forge/death/<client_id> and birth on forge/birth/<client_id>"},
        "drain_timeout": {"type": "number", "minimum": 0, "default": 5.0,
                          "description": "seconds close() waits for PUBACKs; the rest go to the outbox"},
        "username": {"type": ["string", "null"], "default": None},
        "password": {"type": ["string", "null"], "default": None, "description": "use ${env:VAR}"},
        "tls": {"type": "boolean", "default": False,
                "description": "TLS to the broker; implied by ca_file or cert_file"},
        "ca_file": {"type": ["string", "null"], "default": None,
                    "description": "PEM CA bundle to verify the broker; default the system store"},
        "cert_file": {"type": ["string", "null"], "default": None, "description": "client certificate (mTLS)"},
        "key_file": {"type": ["string", "null"], "default": None, "description": "client private key (mTLS)"},
        "key_password": {"type": ["string", "null"], "default": None, "description": "use ${env:VAR}"},
        "tls_insecure": {"type": "boolean", "default": False,
                         "description": "skip the broker host name check (never in production)"},
    },
}


@dataclass
class MqttSettings:
    """Typed ``transports.<name>.settings``; see :data:`SETTINGS_SCHEMA` for each key's meaning."""

    host: str = "localhost"
    port: int = 1883
    protocol: str = "5"
    content_mode: str = "binary"
    client_id: str | None = None
    instance: str | None = None
    source: str | None = None
    qos: int = 1
    qos_by_topic: dict[str, int] = field(default_factory=dict)
    keepalive: int = 30
    connect_timeout: float = 5.0
    reconnect_min_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    session_expiry: int = 0
    clean_start: bool | None = None
    max_inflight: int = 1000
    max_redeliveries: int = 3
    outbox: bool = True
    outbox_max_bytes: int = 100 * 1024 * 1024
    death_certificates: bool = True
    drain_timeout: float = 5.0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: str | None = None
    tls_insecure: bool = False

    def __post_init__(self) -> None:
        self.protocol = str(self.protocol)
        problems = []
        if self.protocol not in ("5", "3.1.1"):
            problems.append(f"protocol must be 5 or 3.1.1, got {self.protocol!r}")
        if self.content_mode not in CONTENT_MODES:
            problems.append(f"content_mode must be one of {', '.join(CONTENT_MODES)}, got {self.content_mode!r}")
        if self.qos not in (0, 1):
            problems.append(f"qos must be 0 or 1, got {self.qos!r}")
        for pattern, qos in self.qos_by_topic.items():
            try:
                validate_pattern(pattern)
            except ValueError as exc:
                problems.append(f"qos_by_topic: {exc}")
            if qos not in (0, 1):
                problems.append(f"qos_by_topic[{pattern!r}] must be 0 or 1, got {qos!r}")
        if not 1 <= self.max_inflight <= 65000:
            problems.append(f"max_inflight must be 1..65000 (MQTT message ids wrap at 65535), got {self.max_inflight}")
        if not 0 <= self.session_expiry <= 0xFFFFFFFF:
            problems.append(f"session_expiry must be 0..4294967295 seconds, got {self.session_expiry}")
        if self.clean_start is False and self.session_expiry == 0:
            problems.append("clean_start false needs session_expiry > 0 (a session that ends with the connection "
                            "cannot be resumed)")
        if self.reconnect_max_delay < self.reconnect_min_delay:
            problems.append("reconnect_max_delay must be >= reconnect_min_delay")
        if (self.cert_file is None) != (self.key_file is None):
            problems.append("cert_file and key_file go together (client certificate for mTLS)")
        if self.password is not None and self.username is None:
            problems.append("password given without username")
        if problems:
            raise TransportError("mqtt settings: " + "; ".join(problems))
        if self.ca_file or self.cert_file:
            self.tls = True

    @classmethod
    def from_dict(cls, settings: dict[str, Any], *, transport: str = "mqtt") -> MqttSettings:
        """Parse a manifest's settings mapping, naming the transport and any unknown key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TransportError(f"transport {transport!r} (mqtt): unknown settings {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(known))}")
        try:
            return cls(**settings)
        except TransportError as exc:
            raise TransportError(f"transport {transport!r}: {exc}") from None

    @property
    def persistent(self) -> bool:
        """The broker keeps this client's session (subscriptions, queued QoS 1) after the connection ends."""
        return self.session_expiry > 0

    @property
    def clean(self) -> bool:
        """Clean start (MQTT 5) / clean session (3.1.1) on every connect of this process."""
        return (not self.persistent) if self.clean_start is None else self.clean_start

    @property
    def is_v5(self) -> bool:
        return self.protocol == "5"

    def qos_for(self, topic: str) -> int:
        """QoS of a publish on ``topic``: the first ``qos_by_topic`` pattern that matches, else ``qos``."""
        for pattern, qos in self.qos_by_topic.items():
            if matches(pattern, topic):
                return qos
        return self.qos
