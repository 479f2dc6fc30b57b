"""Settings of ``transports.<name>.settings`` for ``type: mqtt``, declared once.

:class:`MqttSettings` is the single declaration: the manifest is checked against its JSON Schema,
the runtime builds it (defaults filled) and hands it to the factory, the transport reads its typed
attributes, and docs/transports/mqtt.md's table is ``settings_table(MqttSettings)``. Errors are
:class:`forge_core.SettingsError`, naming the key at fault.

Secrets (``password``, ``key_password``) come from the environment with ``${env:VAR}``: the
manifest loader substitutes them and refuses literal values under those keys.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from forge_core import Settings
from forge_core.transport import matches, validate_pattern
from pydantic import Field, field_validator, model_validator

__all__ = ["MqttSettings"]

Qos = Literal[0, 1]


def _protocol_schema(schema: dict[str, Any]) -> None:
    # YAML reads an unquoted `protocol: 5` as a number: the manifest may say 5 or "5".
    schema.pop("type", None)
    schema["enum"] = ["5", "3.1.1", 5]


class MqttSettings(Settings):
    """Typed ``transports.<name>.settings`` of an MQTT transport."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"password", "key_password"})

    host: str = Field("localhost", description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="broker port (8883 is the usual TLS port)")
    protocol: Literal["5", "3.1.1"] = Field(
        "5", json_schema_extra=_protocol_schema,
        description="5 or \"3.1.1\". MQTT 5 carries the envelope's attributes in the structured JSON event (or, "
                    "binary, as user properties); 3.1.1 has no properties, so by default only the plain JSON body "
                    "travels (unless content_mode is structured)")
    content_mode: Literal["binary", "structured"] | None = Field(
        None,
        description="CloudEvents content mode of published messages; default structured on MQTT 5 (between Forge "
                    "processes: one Content Type property instead of seven user properties, measured faster), "
                    "binary on 3.1.1 (plain devices keep their bare JSON). structured: one JSON event holding every "
                    "attribute and the payload under data, Content Type application/cloudevents+json on MQTT 5; "
                    "every attribute survives 3.1.1 too. binary: the plain JSON payload as the body, attributes as "
                    "MQTT 5 user properties (on 3.1.1 the body alone): set it where plain MQTT 5 clients read the "
                    "topics and want the bare payload. Received messages are read in either mode (the body is "
                    "sniffed), so senders of both modes can share a topic")
    client_id: str | None = Field(
        None, description="MQTT client id; default `forge-<plant>-<transport>` (`-<instance>` appended when instance "
                          "is set; built in code without a plant: `forge-<transport>-<instance or random>`). The "
                          "broker keys the session on it: it must be unique per process (two connections with one "
                          "id take each other's session over) and stable across the process's restarts for a "
                          "persistent session to be resumed")
    instance: str | None = Field(
        None, description="process identity appended to the default client id, for several processes of one "
                          "plant (e.g. ${env:HOSTNAME})")
    source: str | None = Field(None, description="source named in birth/death certificates; default the client id")
    qos: Qos = Field(1, description="QoS of publishes and subscriptions; sets the transport's guarantee "
                                    "(1: at least once, 0: at most once)")
    qos_by_topic: dict[str, Qos] = Field(
        default_factory=dict, description="topic pattern -> QoS (0 or 1); the first matching pattern wins over "
                                          "qos. A subscription's QoS is looked up with its pattern")
    message_expiry_by_topic: dict[str, int] = Field(
        default_factory=dict,
        description="topic pattern -> seconds (1-4294967295): the MQTT 5 Message Expiry Interval of publishes on "
                    "matching topics (the first matching pattern wins; others never expire). The broker drops such "
                    "a message from a session's queue once it expires, so a command queued for a client that is "
                    "away is not delivered after it stopped meaning anything. Counted from the message's own time "
                    "(where it was created: a message that waited in Kafka, a bridge or the outbox keeps only what "
                    "is left); one whose time is already up is not sent (stats expired). Needs protocol 5")
    keepalive: int = Field(30, ge=1, le=65535,
                           description="seconds; the broker declares the client dead (and sends the Will) after "
                                       "1.5 x this without a packet")
    connect_timeout: float = Field(
        5.0, gt=0, description="seconds for the TCP/TLS connect, then again for CONNACK and for each SUBACK")
    reconnect_min_delay: float = Field(
        0.5, gt=0, description="first reconnect delay, seconds; doubles per failed attempt up to "
                               "reconnect_max_delay (forge_core.tactics.Backoff)")
    reconnect_max_delay: float = Field(30.0, gt=0, description="cap of the reconnect delay, seconds")
    session_expiry: int = Field(
        0, ge=0, le=4294967295,
        description="MQTT 5 Session Expiry Interval, seconds (0-4294967295). 0: the session ends with the "
                    "connection. > 0 (a persistent session): the broker keeps subscriptions and queues QoS 1 "
                    "messages for the client while it is away: a reconnect, a restart of the process, or a "
                    "restart of a broker with persistence true. On 3.1.1, > 0 means clean_session=false "
                    "(Mosquitto then keeps the session until persistent_client_expiration). Set it on every "
                    "transport that subscribes to something it must not miss")
    clean_start: bool | None = Field(
        None, description="discard the broker's session of this client id at connect. Default: false when "
                          "session_expiry > 0 (resume whatever the broker kept, also after a restart of the "
                          "process), true otherwise. true with session_expiry > 0 starts a fresh session when the "
                          "process starts and resumes it on reconnects, but Mosquitto 2.0 does not restore such a "
                          "session after its own restart (measured on 2.0.11), so keep the default where a broker "
                          "restart must lose nothing. false with session_expiry 0 is refused")
    max_inflight: int = Field(
        1000, ge=1, le=65000,
        description="QoS 1 publishes awaiting PUBACK (1-65000: MQTT message ids wrap at 65535); publish waits "
                    "when reached; paho gets the same limit")
    max_redeliveries: int = Field(
        3, ge=0, description="local redeliveries of a QoS 1 message to a callback that raises, before it is "
                             "reported undeliverable (QoS 0: none)")
    max_message_bytes: int = Field(
        1048576, ge=1, le=268435455,
        description="largest message body accepted, bytes (MQTT allows 256 MiB). A bigger one is refused before "
                    "it is decoded: acknowledged, counted (stats too_large) and dead-lettered as too_large with its "
                    "size, without its body")
    outbox: bool = Field(
        True, description="keep publishes made while disconnected in `<data_dir>/outbox-<name>.db` (SQLite, "
                          "forge_core.tactics.Outbox) and replay them in order. Off: such a publish raises "
                          "TransportNotReady")
    outbox_max_bytes: int = Field(
        104857600, ge=1, description="size limit of the outbox, bytes; beyond it publish raises OutboxFull naming "
                                     "the file")
    death_certificates: bool = Field(
        True, description="Will on `forge/death/<client_id>` and birth on `forge/birth/<client_id>`")
    drain_timeout: float = Field(
        5.0, ge=0, description="seconds close() waits for outstanding PUBACKs; what is still unacknowledged goes "
                               "to the outbox")
    cancel_timeout: float = Field(
        20.0, gt=0, description="seconds a subscription's cancel() waits for a call of its handler under way (the "
                                "runtime ends a component's batch subscriptions before its stop()); past it the "
                                "subscription is logged as an error and cancel() returns, the message "
                                "unacknowledged while the handler runs. Below the runtime's 30 s FLUSH_TIMEOUT")
    username: str | None = Field(None, description="user name at the broker")
    password: str | None = Field(
        None, description="password at the broker; needs username. Write ${env:VAR}: the manifest loader refuses "
                          "a literal")
    tls: bool = Field(False, description="TLS to the broker; implied by ca_file or cert_file")
    ca_file: str | None = Field(
        None, description="PEM CA bundle that signed the broker's certificate; default the system store")
    cert_file: str | None = Field(None, description="client certificate (mTLS); needs key_file")
    key_file: str | None = Field(None, description="client private key (mTLS); needs cert_file")
    key_password: str | None = Field(None, description="password of key_file; write ${env:VAR}")
    tls_insecure: bool = Field(
        False, description="skip the broker host name check (never in production); the chain is still verified")

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("qos_by_topic")
    @classmethod
    def _patterns_are_valid(cls, value: dict[str, int]) -> dict[str, int]:
        for pattern in value:
            validate_pattern(pattern)  # ValueError names the pattern
        return value

    @field_validator("message_expiry_by_topic")
    @classmethod
    def _expiries_are_valid(cls, value: dict[str, int]) -> dict[str, int]:
        for pattern, seconds in value.items():
            validate_pattern(pattern)  # ValueError names the pattern
            if not 1 <= seconds <= 4294967295:
                raise ValueError(f"message_expiry_by_topic[{pattern!r}]: {seconds} is not 1..4294967295 seconds "
                                 "(MQTT's Message Expiry Interval; leave the topic out for no expiry)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _tls_implied(cls, data: Any) -> Any:
        if isinstance(data, dict) and (data.get("ca_file") or data.get("cert_file")):
            return {**data, "tls": True}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> MqttSettings:
        problems = []
        if self.clean_start is False and self.session_expiry == 0:
            problems.append("clean_start false needs session_expiry > 0 (a session that ends with the connection "
                            "cannot be resumed)")
        if self.reconnect_max_delay < self.reconnect_min_delay:
            problems.append("reconnect_max_delay must be >= reconnect_min_delay")
        if (self.cert_file is None) != (self.key_file is None):
            problems.append("cert_file and key_file go together (client certificate for mTLS)")
        if self.password is not None and self.username is None:
            problems.append("password given without username")
        if self.message_expiry_by_topic and not self.is_v5:
            problems.append("message_expiry_by_topic needs protocol 5 (MQTT 3.1.1 has no Message Expiry Interval); "
                            "3.1.1 subscribers still get it enforced by the broker when a 5 client publishes")
        if problems:
            raise ValueError("; ".join(problems))
        return self

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

    @property
    def structured(self) -> bool:
        """Whether publishes are structured CloudEvents: content_mode, else structured on MQTT 5 only."""
        return self.is_v5 if self.content_mode is None else self.content_mode == "structured"

    def qos_for(self, topic: str) -> int:
        """QoS of a publish on ``topic``: the first ``qos_by_topic`` pattern that matches, else ``qos``."""
        for pattern, qos in self.qos_by_topic.items():
            if matches(pattern, topic):
                return qos
        return self.qos

    def expiry_for(self, topic: str) -> int | None:
        """Message Expiry Interval (seconds) of a publish on ``topic``: the first ``message_expiry_by_topic``
        pattern that matches, else None (never expires)."""
        for pattern, seconds in self.message_expiry_by_topic.items():
            if matches(pattern, topic):
                return seconds
        return None
