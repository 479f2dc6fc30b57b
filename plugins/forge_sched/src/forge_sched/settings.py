"""The params of the forge_sched components, declared once (``forge_core.Settings``).

The model gives the manifest's JSON Schema (``forge validate``), the defaults (``self.params`` is
an instance, defaults filled) and the docs table (``settings_table(BladeSchedulerParams)``).
"""

from __future__ import annotations

import re
from typing import ClassVar, Self

from forge_core import Settings
from pydantic import Field, field_validator, model_validator


class Targets(Settings):
    """Target storage level per category, percent."""

    fresh: float = Field(50.0, ge=0, le=100, description="target of the fresh categories (mean of A and B fresh)")
    dry: float = Field(50.0, ge=0, le=100, description="target of the dry categories (mean of A and B dry)")
    A: float = Field(50.0, ge=0, le=100, description="target of blade A's categories (mean of fresh and dry)")
    B: float = Field(50.0, ge=0, le=100, description="target of blade B's categories (mean of fresh and dry)")


class Topics(Settings):
    """Where the blade scheduler listens and sends; a plant binds its own topics here."""

    heartbeats: str = Field("heartbeats", description="sched.machine_heartbeat in")
    assign: str = Field("sched/assign_blade", description="sched.assign_blade out (and observed)")
    swap: str = Field("sched/swap_blade", description="sched.swap_blade out (and observed)")
    swapped: str = Field("sched/blade_swapped", description="sched.blade_swapped in")
    change_fresh: str = Field("sched/change_fresh_amount", description="sched.change_fresh_amount out (and observed)")
    fresh_changed: str = Field("sched/fresh_amount_changed", description="sched.fresh_amount_changed in")
    alert: str = Field("storage/alert", description="sched.storage_alert in")
    status: str = Field("forge/status/+", description="forge.status in (DOWN removes a machine)")
    death: str = Field("forge/death/+", description="forge.death in (removes a machine)")


class BladeSchedulerParams(Settings):
    """Params of ``sched.blade_scheduler``."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"command_secret"})

    lease: str = Field("scheduler", min_length=1,
                       description="leader-election lease shared by the active and the shadow")
    discovery_time: float = Field(12.0, gt=0,
                                  description="seconds of listening to heartbeats before the first assignment")
    health_check_interval: float = Field(5.0, gt=0,
                                         description="how often silent machines are removed and blades rebalanced")
    machine_timeout: float = Field(10.0, gt=0, description="a machine silent this long is removed")
    dedup_window: float = Field(1.0, gt=0,
                                description="one heartbeat per machine per window is handled (tactics.dedup)")
    assign_interval: float = Field(5.0, gt=0,
                                   description="how often pending commands time out and missed assignments are "
                                               "caught up (waiting machines are assigned as soon as they are seen)")
    confirm_timeout: float = Field(20.0, gt=0,
                                   description="an assignment or swap no heartbeat confirmed within this is retried")
    alert_cooldown: float = Field(10.0, gt=0,
                                  description="seconds between two reactions of one kind (fresh amount, blade swap)")
    persist_interval: float = Field(5.0, gt=0,
                                    description="the leader saves its state this often, besides on every command")
    targets: Targets = Field(Targets(), description="target storage level per category, percent")
    threshold: float = Field(10.0, ge=0,
                             description="percentage points from target a category may be off without a reaction; "
                                         "more than twice this is far (step 4 instead of 2)")
    fresh_amount: int = Field(4, ge=0, le=10,
                              description="the sorting's fresh amount believed at start (confirmations update it)")
    fresh_amount_max: int = Field(10, ge=1, description="upper clamp of the fresh amount")
    machine_sources: str = Field(r"^(?:machine-)?(\d+)$",
                                 description="regex whose group 1 is the machineId in a forge.status / forge.death "
                                             "source; other sources are ignored")
    topics: Topics = Field(Topics(), description="where it listens and sends (see the Topics table)")
    command_secret: str | None = Field(
        None, min_length=16,
        description="plant key: when set, every command carries the holder's HMAC-SHA256 of (lease, epoch, body "
                    "without it) in its `signature` field, and commands seen from others are mirrored only if "
                    "signed; receivers with the same key drop the rest as forged. From the environment "
                    "(${env:...}), never written in the file")

    def command_keys(self) -> dict[str, bytes]:
        """``{lease: plant key}`` for ``ctx.fence.keys`` when ``command_secret`` is set, else empty."""
        return {self.lease: self.command_secret.encode()} if self.command_secret else {}

    @field_validator("machine_sources")
    @classmethod
    def _one_group(cls, value: str) -> str:
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if pattern.groups < 1:
            raise ValueError("needs a group: group 1 is the machineId")
        return value

    @model_validator(mode="after")
    def _fresh_within_clamp(self) -> Self:
        if self.fresh_amount > self.fresh_amount_max:
            raise ValueError(f"fresh_amount ({self.fresh_amount}) is above fresh_amount_max ({self.fresh_amount_max})")
        return self


class OrderTopics(Settings):
    """Where the order scheduler listens and sends; ``{factory_id}`` is filled in on the way out."""

    created: str = Field("orders/created", description="sched.order_created out (and observed: the leader places "
                                                        "orders another replica took)")
    assigned: str = Field("factory/{factory_id}/orders", description="sched.order_assigned out, to the new holder")
    revoked: str = Field("factory/{factory_id}/orders/revoked",
                         description="sched.order_revoked out, to the factory that must drop the order")
    progress: str = Field("factory/+/progress", description="sched.order_progress in")
    completed: str = Field("factory/+/completed", description="sched.order_completed in")
    status_report: str = Field("mms/status_report", description="mms.status_report and mms.capacity_query in (the bus "
                                                                  "status reporter)")
    status_report_result: str = Field("sched/status_report_result", description="sched.status_report_result and "
                                                                                   "sched.factory_capacity out")
    risk: str | None = Field("mms/risk/+", description="mms.risk_changed in (shown by GET /factories); null: off")
    heartbeats: str | None = Field("factory/+/heartbeat",
                                   description="mms.factory_heartbeat in: a factory first heard of is added (UP, "
                                               "default_capacity); null: off")
    requests: str | None = Field("orders/requests", description="sched.order_request in: create/change/cancel/get "
                                                                "an order by message (the leader answers); null: off")
    replies: str = Field("orders/replies", description="sched.order_reply out, keyed by the request's requestId")
    endpoints: str | None = Field(
        "sched/endpoints", description="sched.endpoint out: where this replica's REST and gRPC answer and whether it "
                                       "leads, while it listens on a socket (status_reporter.grpc and clients find "
                                       "the leader by it when replicas run on ephemeral ports); null: off")


class TransactionRetry(Settings):
    """The retry tactic around each database transaction (deadlock / serialization failure)."""

    max_attempts: int = Field(3, ge=1, le=20, description="attempts of one transaction, the first included")
    initial: float = Field(0.02, ge=0, description="seconds before the second attempt (doubling after)")
    max_backoff: float = Field(0.5, ge=0, description="the longest pause between attempts, seconds")


class OrderSchedulerParams(Settings):
    """Params of ``sched.order_scheduler``."""

    lease: str = Field("order_scheduler", min_length=1, max_length=150,
                       description="leader-election lease of the active scheduler (the other replica shadows)")
    capacities: dict[str, int] = Field(
        {}, description="capacity (orders held at once) per factory id; these factories are known from the start "
                        "(UP) and their capacity follows this setting")
    default_capacity: int = Field(10, ge=0,
                                  description="capacity of a factory first seen through a status report or heartbeat")
    schedule_interval: float = Field(1.0, gt=0,
                                     description="the leader's pass: pending orders placed, outbox relayed")
    probe_every: float = Field(5.0, gt=0,
                               description="the pass reads the database for work (pending orders, queued "
                                           "messages) only after a write of this process or once this many "
                                           "seconds passed since its last read: another process's writes "
                                           "are found within it")
    progress_delay: float = Field(5.0, ge=0,
                                  description="a factory's progress report on an order already in progress is "
                                              "written with this process's next transaction on the database or "
                                              "by the pass once this many seconds old (0: a transaction each)")
    require_epoch: bool = Field(False, description="refuse status reports on the bus (mms.status_report) without "
                                                   "a fencing epoch (invalid_argument); false: accept them, counted "
                                                   "as unfenced. gRPC always requires forge-epoch and forge-lease "
                                                   "metadata (INVALID_ARGUMENT without)")
    retry: TransactionRetry = Field(TransactionRetry(), description="retry of a transaction that lost to another")
    rest_path: str = Field("/", pattern=r"^/", description="where the REST API is mounted on the runtime's HTTP "
                                                         "server (ctx.http)")
    max_body_bytes: int = Field(65536, ge=256, description="largest POST /orders body accepted (413 above)")
    page_limit: int = Field(1000, ge=1, description="most orders one GET /orders returns (the `limit` query's cap)")
    announce_every: float = Field(2.0, gt=0, description="seconds between two sched.endpoint announcements (one also "
                                                         "on each election and deposition)")
    topics: OrderTopics = Field(OrderTopics(), description="where it listens and sends (see the OrderTopics table)")

    @field_validator("capacities")
    @classmethod
    def _capacities(cls, value: dict[str, int]) -> dict[str, int]:
        for fid, capacity in value.items():
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$", fid):
                raise ValueError(f"factory id {fid!r}: letters, digits and ._:- (first a letter or digit), "
                                 "at most 100 characters")
            if capacity < 0:
                raise ValueError(f"capacity of {fid!r} must be >= 0, got {capacity}")
        return value


def host_port(value: str) -> str:
    """``value`` if it is ``host:port``; ValueError with an example otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port (e.g. 127.0.0.1:50051), got {value!r}")
    return value


class GrpcStatusReporterSettings(Settings):
    """Settings of the tactic ``status_reporter.grpc`` (``tactics: {status_reporter: {use: grpc, ...}}``)."""

    target: str | None = Field(None, description="the PMS's gRPC server, host:port (`${env:...}` allowed); tried "
                                                 "after the announced ones")
    targets: list[str] = Field([], description="more PMS replicas, host:port each, tried in turn after `target` when "
                                               "one is unreachable or not the leader (UNAVAILABLE)")
    endpoints_topic: str | None = Field(
        None, description="listen for sched.endpoint announcements here (the order scheduler's `topics.endpoints`, "
                          "e.g. sched/endpoints): replicas on ephemeral ports are found, the leader tried first")
    timeout: float = Field(5.0, gt=0, description="deadline of one call, seconds; exceeded: a retryable error")
    reconnect_backoff_max: float = Field(
        1.0, gt=0, description="cap of the channel's own reconnect backoff, seconds: keeps a restarted server "
                               "reachable at the retry tactic's next attempt (which paces the calls)")
    tls: bool = Field(False, description="TLS to the server; false: plaintext (localhost, a private network)")
    ca_cert: str | None = Field(None, description="PEM file of the CA that signed the server's certificate "
                                                  "(TLS only); null: the system's roots")
    client_cert: str | None = Field(None, description="PEM certificate chain of this client (mutual TLS; with "
                                                      "client_key)")
    client_key: str | None = Field(None, description="PEM private key of client_cert (mutual TLS)")

    @field_validator("target")
    @classmethod
    def _target(cls, value: str | None) -> str | None:
        return None if value is None else host_port(value)

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        return [host_port(target) for target in value]

    @model_validator(mode="after")
    def _somewhere(self) -> Self:
        if self.target is None and not self.targets and self.endpoints_topic is None:
            raise ValueError("no PMS to call: give target (host:port), targets or endpoints_topic")
        return self

    def static_targets(self) -> list[str]:
        """``target`` then ``targets``, each once."""
        return list(dict.fromkeys([*([self.target] if self.target else []), *self.targets]))

    @model_validator(mode="after")
    def _tls_files(self) -> Self:
        files = [name for name in ("ca_cert", "client_cert", "client_key") if getattr(self, name) is not None]
        if files and not self.tls:
            raise ValueError(f"{', '.join(files)} given but tls is false: set tls: true or drop them")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together (mutual TLS): give both or neither")
        return self
