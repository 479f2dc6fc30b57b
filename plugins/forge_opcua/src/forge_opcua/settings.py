"""The params of the forge_opcua components, declared once (``forge_core.Settings``).

Each model gives the manifest's JSON Schema (``forge validate``), the defaults and the docs table
(``scripts/gen_settings_docs.py``). Node ids are checked for syntax here, so a typo such as
``ns=two;s=M1.State`` is a ``forge validate`` problem naming the component and the field; whether the
node exists is only known once connected (``opcua.source`` refuses to start, naming the node).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from forge_core import Settings
from pydantic import Field, field_validator, model_validator

__all__ = ["BrowseSpec", "ClientSecurity", "MachineTiming", "NodeSpec", "PlcSimulatorParams", "ServerSecurity",
           "SourceParams", "check_node_id", "node_id_text"]

NODE_ID_EXAMPLES = "ns=2;s=M1.State, ns=2;i=1001, i=2258 or nsu=urn:forge:opcua:plc-simulator;s=M1.State"
_TOPIC_FIELDS = "{source} (the component instance) and {tag}"


def check_node_id(text: str) -> str:
    """``text`` if it is an OPC UA node id string (Part 6, 5.3.1.10), else ValueError naming it."""
    from asyncua import ua  # asyncua's own parser: what the client will accept is what passes here

    try:
        ua.NodeId.from_string(text)
    except Exception as exc:
        reason = exc.args[1] if len(exc.args) > 1 else exc
        raise ValueError(f"{text!r} is not an OPC UA node id ({reason}); write e.g. {NODE_ID_EXAMPLES}") from None
    return text


def node_id_text(namespace: str, name: str) -> str:
    """The namespace-independent id of a string node: ``nsu=<namespace>;s=<name>`` (the simulator's
    nodes: ``node_id_text("urn:forge:opcua:plc-simulator", "M1.State")``)."""
    return f"nsu={namespace};s={name}"


class NodeSpec(Settings):
    """One node to subscribe to, by id."""

    node_id: str = Field(description=f"the node id ({NODE_ID_EXAMPLES}); nsu= survives a server that renumbers "
                                     "its namespaces on restart")
    tag: str | None = Field(None, min_length=1,
                            description="the tag name in messages and topics (default: the node's browse name)")

    @field_validator("node_id")
    @classmethod
    def _syntax(cls, value: str) -> str:
        return check_node_id(value)


class BrowseSpec(Settings):
    """A folder or object whose variables are all subscribed, found by browsing."""

    root: str | None = Field(None, description="node id of the folder or object to browse")
    path: str | None = Field(None, min_length=1,
                             description="or its browse path from the Objects folder, names joined by '/' "
                                         "(e.g. Machines), namespace-independent")
    max_depth: int = Field(4, ge=1, le=16, description="levels below the root to descend")

    @field_validator("root")
    @classmethod
    def _root_is_a_node_id(cls, value: str | None) -> str | None:
        return None if value is None else check_node_id(value)

    @model_validator(mode="after")
    def _one_root(self) -> Self:
        if (self.root is None) == (self.path is None):
            raise ValueError("give exactly one of root (a node id) and path (browse names from Objects)")
        return self


class ClientSecurity(Settings):
    """How ``opcua.source`` secures its connection (OPC UA Part 2 security policies)."""

    secret_fields = frozenset({"key_password"})

    policy: Literal["None", "Basic256Sha256"] = Field("None", description="the security policy; None sends in clear")
    mode: Literal["Sign", "SignAndEncrypt"] = Field("SignAndEncrypt", description="message security mode "
                                                                                  "(with Basic256Sha256)")
    cert_file: str | None = Field(None, description="this client's application certificate (PEM or DER); its "
                                                    "subjectAltName URI must be application_uri")
    key_file: str | None = Field(None, description="the certificate's private key (PEM or DER)")
    key_password: str | None = Field(None, description="password of key_file; write ${env:VAR}")
    trusted: list[str] = Field([], description="certificates (CAs, or the server's own) the server's certificate "
                                               "must chain to; PEM or DER files")
    verify_server: bool = Field(True, description="check the server's certificate against trusted (never off in "
                                                  "production)")
    application_uri: str = Field("urn:forge:opcua:source", min_length=1,
                                 description="this client's application URI, as in its certificate")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.policy == "None":
            return self
        missing = [name for name in ("cert_file", "key_file") if getattr(self, name) is None]
        if missing:
            raise ValueError(f"policy {self.policy} needs {' and '.join(missing)} (this client's certificate)")
        if self.verify_server and not self.trusted:
            raise ValueError(f"policy {self.policy} needs trusted: the CA (or server certificate) the server's "
                             "certificate must chain to (or verify_server: false, never in production)")
        return self


class SourceParams(Settings):
    """Params of ``opcua.source``. Sampling intervals and watermarks left null come from the plant's
    ``tactics.backpressure`` (defaults 0.25 s / 2.0 s, 1,000 / 500 messages, 5 s settling)."""

    endpoint: str = Field(pattern=r"^opc\.tcp://", description="the server's endpoint URL, opc.tcp://host:port/path")
    nodes: list[NodeSpec | str] = Field([], description="nodes to subscribe to: node id strings or {node_id, tag}")
    browse: list[BrowseSpec] = Field([], description="folders or objects whose variables are subscribed")
    publishing_interval: float = Field(0.25, gt=0, description="the subscription's publishing interval, seconds")
    sampling_interval: float | None = Field(None, gt=0, description="sampling interval under normal load, seconds "
                                                                    "(null: tactics.backpressure.fast_interval)")
    slow_sampling_interval: float | None = Field(None, gt=0,
                                                 description="sampling interval under backpressure, seconds "
                                                             "(null: tactics.backpressure.slow_interval)")
    adaptive_sampling: bool = Field(True, description="switch the sampling interval on the queue depth; off: "
                                                      "always sampling_interval")
    high_watermark: int | None = Field(None, ge=1, description="queue depth above which sampling slows (null: "
                                                               "tactics.backpressure.high)")
    low_watermark: int | None = Field(None, ge=0, description="depth below which it speeds up again after settle "
                                                              "(null: tactics.backpressure.low)")
    settle: float | None = Field(None, ge=0, description="seconds under low_watermark before speeding up (null: "
                                                         "tactics.backpressure.settle)")
    check_every: float = Field(0.25, gt=0, description="seconds between two looks at the queue depth")
    depth_topic: str | None = Field(None, description="where opcua.queue_depth reports of a downstream queue (an "
                                                      "edge node's outbox) arrive; the larger depth counts")
    depth_max_age: float = Field(10.0, gt=0, description="a downstream depth older than this many seconds no "
                                                         "longer counts")
    queue_size: int = Field(10, ge=1, description="samples the server queues per node between two publishes")
    topic: str = Field("opcua/{source}/{tag}", min_length=1,
                       description=f"where opcua.data_change goes; {_TOPIC_FIELDS}")
    status_topic: str = Field("opcua/{source}/status", min_length=1,
                              description="where opcua.source_status goes on every connect and loss")
    max_backlog: int = Field(100_000, ge=1, description="data changes held while the bus does not take them; "
                                                        "beyond, the oldest are dropped and counted")
    publish_batch: int = Field(500, ge=1, description="data changes published in one batch at most")
    request_timeout: float = Field(10.0, gt=0, description="seconds one OPC UA request may take")
    watchdog_interval: float = Field(1.0, gt=0, description="seconds between two liveness reads of the server's "
                                                            "state; a failed read is a lost connection")
    session_timeout: float = Field(30.0, gt=0, description="the session's timeout, seconds: how long a server "
                                                           "keeps a session whose client vanished")
    reconnect_min_delay: float = Field(0.5, gt=0, description="first delay before reconnecting, seconds")
    reconnect_max_delay: float = Field(10.0, gt=0, description="the delay doubles up to this, seconds")
    security: ClientSecurity = Field(ClientSecurity(), description="security policy, mode and certificates")

    @field_validator("nodes")
    @classmethod
    def _node_ids(cls, value: list[NodeSpec | str]) -> list[NodeSpec | str]:
        for index, node in enumerate(value):
            if isinstance(node, str):
                try:
                    check_node_id(node)
                except ValueError as exc:
                    raise ValueError(f"item {index}: {exc}") from None
        return value

    @field_validator("topic", "status_topic")
    @classmethod
    def _topic_fields(cls, value: str) -> str:
        try:
            value.format(source="s", tag="t")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{value!r} may only use {_TOPIC_FIELDS} ({exc!r})") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        if not self.nodes and not self.browse:
            problems.append("give nodes, browse or both: nothing to subscribe to")
        if self.reconnect_max_delay < self.reconnect_min_delay:
            problems.append("reconnect_max_delay must be >= reconnect_min_delay")
        if None not in (self.high_watermark, self.low_watermark) and \
                self.low_watermark >= self.high_watermark:  # type: ignore[operator]
            problems.append(f"low_watermark ({self.low_watermark}) must be below high_watermark "
                            f"({self.high_watermark})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def node_specs(self) -> list[NodeSpec]:
        return [NodeSpec(node_id=n) if isinstance(n, str) else n for n in self.nodes]

    def backpressure_overrides(self) -> dict[str, Any]:
        """The ``tactics.backpressure`` settings this source overrides."""
        chosen = {"fast_interval": self.sampling_interval, "slow_interval": self.slow_sampling_interval,
                  "high": self.high_watermark, "low": self.low_watermark, "settle": self.settle}
        return {key: value for key, value in chosen.items() if value is not None}


class ServerSecurity(Settings):
    """How the simulated PLC secures its endpoints."""

    policies: list[Literal["None", "Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt"]] = Field(
        ["None"], min_length=1, description="the endpoints offered")
    cert_file: str | None = Field(None, description="the server's application certificate (PEM or DER)")
    key_file: str | None = Field(None, description="its private key (PEM or DER)")
    trusted: list[str] = Field([], description="certificates (CAs, or clients' own) a client's certificate must "
                                               "chain to; others are refused with BadCertificateUntrusted")
    application_uri: str = Field("urn:forge:opcua:plc-simulator", min_length=1,
                                 description="the server's application URI, as in its certificate")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.policies == ["None"]:
            return self
        missing = [name for name in ("cert_file", "key_file") if getattr(self, name) is None]
        if missing:
            raise ValueError(f"secure policies need {' and '.join(missing)} (the server's certificate)")
        if not self.trusted:
            raise ValueError("secure policies need trusted: the CA (or client certificates) clients must present")
        return self


class MachineTiming(Settings):
    """How a simulated machine behaves: mean state durations (exponential), cycle time and losses."""

    ideal_cycle_time: float = Field(1.0, gt=0, description="seconds per part at full speed")
    speed_loss: float = Field(0.1, ge=0, le=10, description="a real cycle is ideal x (1 + U(0, speed_loss))")
    scrap_rate: float = Field(0.05, ge=0, le=1, description="probability that a finished part is bad")
    mean_running: float = Field(600.0, gt=0, description="mean seconds running before a stop")
    mean_idle: float = Field(60.0, gt=0, description="mean seconds idle (starved, blocked)")
    mean_down: float = Field(120.0, gt=0, description="mean seconds down (a fault)")
    mean_setup: float = Field(300.0, gt=0, description="mean seconds in setup (changeover)")
    stop_weights: dict[Literal["idle", "down", "setup"], float] = Field(
        {"idle": 0.4, "down": 0.35, "setup": 0.25}, description="which stop follows running, by weight")
    fault_codes: list[int] = Field([101, 102, 103, 201, 202, 301], min_length=1,
                                   description="codes drawn for a down state (0 means no fault)")

    @field_validator("stop_weights")
    @classmethod
    def _some_weight(cls, value: dict[str, float]) -> dict[str, float]:
        if any(weight < 0 for weight in value.values()) or sum(value.values()) <= 0:
            raise ValueError(f"weights must be >= 0 and not all 0, got {value}")
        return value


class PlcSimulatorParams(Settings):
    """Params of ``opcua.plc_simulator``: an OPC UA server whose machines change on the plant's clock."""

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(4840, ge=0, le=65535, description="TCP port (0: a free one, shown in health)")
    path: str = Field("/forge/plc", description="the endpoint URL's path")
    machines: list[str] = Field(["M1", "M2", "M3"], min_length=1, description="machine ids, one object each")
    timing: MachineTiming = Field(MachineTiming(), description="the machines' behaviour")
    cycle_times: dict[str, float] = Field({}, description="ideal cycle time per machine id, overriding timing's")
    tick: float = Field(0.1, gt=0, description="seconds between two updates of the address space")
    namespace: str = Field("urn:forge:opcua:plc-simulator", min_length=1, description="the namespace URI of the "
                                                                                      "machines' nodes")
    security: ServerSecurity = Field(ServerSecurity(), description="endpoints and certificates")

    @field_validator("machines")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        bad = [m for m in value if not m or any(c in m for c in "./;# +")]
        if bad:
            raise ValueError(f"machine ids may not be empty or contain . / ; # + or spaces: {bad}")
        if len(set(value)) != len(value):
            raise ValueError(f"machine ids repeat: {value}")
        return value

    @model_validator(mode="after")
    def _known_cycle_times(self) -> Self:
        unknown = sorted(set(self.cycle_times) - set(self.machines))
        if unknown:
            raise ValueError(f"cycle_times names machines that are not in machines: {unknown}")
        if any(v <= 0 for v in self.cycle_times.values()):
            raise ValueError("cycle_times must be > 0 seconds")
        return self
