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
        description="MQTT 5 (attributes as user properties) or 3.1.1 (plain JSON body)")
    content_mode: Literal["binary", "structured"] = Field(
        "binary",
        description="CloudEvents content mode of published messages: binary (plain JSON body, attributes as "
                    "MQTT 5 user properties; on 3.1.1 the body alone) or structured (one JSON event, every "
                    "attribute kept, on 3.1.1 too); received messages are read in either")
    client_id: str | None = Field(
        None, description="MQTT client id; default forge-<plant>-<transport>[-<instance>]. Unique per process "
                          "and stable across its restarts (the broker keys the session on it)")
    instance: str | None = Field(
        None, description="process identity appended to the default client id, for several processes of one "
                          "plant (e.g. ${env:HOSTNAME})")
    source: str | None = Field(None, description="source named in birth/death certificates; default the client id")
    qos: Qos = Field(1, description="QoS of publishes and subscriptions")
    qos_by_topic: dict[str, Qos] = Field(
        default_factory=dict, description="topic pattern -> QoS; first matching pattern wins over qos")
    keepalive: int = Field(30, ge=1, le=65535,
                           description="seconds; the broker declares the client dead after 1.5x this")
    connect_timeout: float = Field(5.0, gt=0, description="seconds to wait for TCP/TLS connect and then for CONNACK")
    reconnect_min_delay: float = Field(
        0.5, gt=0, description="first reconnect delay, seconds; doubles per failed attempt")
    reconnect_max_delay: float = Field(30.0, gt=0, description="cap of the reconnect delay, seconds")
    session_expiry: int = Field(
        0, ge=0, le=4294967295,
        description="MQTT 5 session expiry, seconds; >0 keeps subscriptions and queued QoS 1 messages at the "
                    "broker across reconnects and broker restarts (3.1.1: clean_session=false)")
    clean_start: bool | None = Field(
        None, description="discard the broker's session of this client id at connect; default false when "
                          "session_expiry > 0 (resume it), true otherwise")
    max_inflight: int = Field(
        1000, ge=1, le=65000,
        description="QoS 1 publishes awaiting PUBACK; publish waits when reached (at most 65000: MQTT message "
                    "ids wrap at 65535)")
    max_redeliveries: int = Field(3, ge=0, description="local redeliveries to a raising callback before giving up")
    outbox: bool = Field(True, description="store publishes made while disconnected in <data_dir>/outbox-<name>.db")
    outbox_max_bytes: int = Field(
        104857600, ge=1, description="size limit of the outbox; beyond it publish raises OutboxFull")
    death_certificates: bool = Field(
        True, description="Will on forge/death/<client_id> and birth on forge/birth/<client_id>")
    drain_timeout: float = Field(5.0, ge=0, description="seconds close() waits for PUBACKs; the rest go to the outbox")
    username: str | None = Field(None, description="user name at the broker")
    password: str | None = Field(None, description="use ${env:VAR}")
    tls: bool = Field(False, description="TLS to the broker; implied by ca_file or cert_file")
    ca_file: str | None = Field(None, description="PEM CA bundle to verify the broker; default the system store")
    cert_file: str | None = Field(None, description="client certificate (mTLS)")
    key_file: str | None = Field(None, description="client private key (mTLS)")
    key_password: str | None = Field(None, description="use ${env:VAR}")
    tls_insecure: bool = Field(False, description="skip the broker host name check (never in production)")

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

    def qos_for(self, topic: str) -> int:
        """QoS of a publish on ``topic``: the first ``qos_by_topic`` pattern that matches, else ``qos``."""
        for pattern, qos in self.qos_by_topic.items():
            if matches(pattern, topic):
                return qos
        return self.qos
