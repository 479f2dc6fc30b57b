"""Params of the industry40 components (``components.<name>.params`` in plant.yaml), declared once.

The defaults are the numbers of the original system: a beat every second, degraded beats late by
0.5-3 s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from forge_core import Settings

Mode = Literal["normal", "stop", "degraded", "flapping"]
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")  # what the order scheduler accepts as a factory id



def _ordered(model: Any, *names: str, weights: Mapping[Any, float] | None = None) -> None:
    """min_<name> <= max_<name> for each name, and weights (if given) >= 0 with one above 0 (keyed by a
    Literal of names: a Mapping over Any, since dict is invariant in its key type)."""
    for name in names:
        low, high = getattr(model, f"min_{name}"), getattr(model, f"max_{name}")
        if low > high:
            raise ValueError(f"min_{name} ({low}) is above max_{name} ({high})")
    if weights is not None and (any(w < 0 for w in weights.values()) or not any(weights.values())):
        raise ValueError("weights must be >= 0 and at least one above 0")

class FactoryParams(Settings):
    """``industry40.factory``: a simulated factory (one per replica)."""

    id_format: str = Field("factory-{n}", description="the factory id; {n} is the replica number + first_number "
                                                      "(factory-1 ... factory-4 with 4 replicas)")
    first_number: int = Field(1, ge=0, description="{n} of the first replica")
    heartbeat_interval: float = Field(1.0, gt=0, description="seconds between beats on factory/<id>/heartbeat")
    capacity: int = Field(10, ge=0, description="orders a factory holds at once (forge validate refuses an order "
                                                "scheduler's capacity above it); more is accepted and counted "
                                                "over_capacity")
    capacities: dict[str, int] = Field({}, description="capacity per factory id, overriding `capacity`")
    lines: int = Field(2, ge=1, description="orders worked on at once; the others wait, not started (movable by a "
                                            "drain)")
    setup_time: float = Field(2.0, ge=0, description="seconds before work on an order starts making units")
    seconds_per_unit: float = Field(0.5, gt=0, description="seconds per unit of an order's quantity (duration = "
                                                           "setup_time + quantity x this)")
    progress_every: float = Field(5.0, gt=0, description="seconds between sched.order_progress reports on an order "
                                                         "being made (one also at its start)")
    modes: dict[str, Mode] = Field({}, description="failure mode per factory id at start (normal, stop, degraded, "
                                                   "flapping); industry40.factory_mode changes it at run time")
    degraded_delay_min: float = Field(0.5, ge=0, description="degraded: shortest delay added to a beat, seconds")
    degraded_delay_max: float = Field(3.0, ge=0, description="degraded: longest delay added to a beat, seconds")
    degraded_errors: int = Field(1, ge=0, description="degraded: errors added to metrics.errors per beat")
    error_probability: float = Field(0.0, ge=0, le=1, description="normal: chance a beat adds one error")
    flap_up: float = Field(8.0, gt=0, description="flapping: seconds beating before going silent")
    flap_down: float = Field(5.0, gt=0, description="flapping: seconds silent before beating again")
    base_latency_ms: float = Field(20.0, ge=0, description="latencyMs of a normal beat (a degraded one adds its "
                                                           "delay)")

    @field_validator("id_format")
    @classmethod
    def _has_number(cls, value: str) -> str:
        if "{n}" not in value:
            raise ValueError("must contain {n} (replicas need distinct ids)")
        return value

    @field_validator("capacities", "modes")
    @classmethod
    def _ids(cls, value: dict[str, object]) -> dict[str, object]:
        for fid in value:
            if not _ID.match(fid):
                raise ValueError(f"factory id {fid!r}: letters, digits and ._:- (first a letter or digit)")
        return value

    @model_validator(mode="after")
    def _delays(self) -> Self:
        if self.degraded_delay_min > self.degraded_delay_max:
            raise ValueError(f"degraded_delay_min ({self.degraded_delay_min}) is above degraded_delay_max "
                             f"({self.degraded_delay_max})")
        return self

    def factory_id(self, replica: int) -> str:
        return self.id_format.replace("{n}", str(replica + self.first_number))


class ChaosParams(Settings):
    """``industry40.chaos``: seeded factory failures and kills of the MMS leader and the PMS."""

    enabled: bool = Field(False, description="off unless a profile (chaos) turns it on")
    factories: str = Field("factory", description="the factories' component name")
    min_interval: float = Field(20.0, gt=0, description="shortest wait between two chaos actions, seconds")
    max_interval: float = Field(60.0, gt=0, description="longest wait between two chaos actions, seconds")
    min_outage: float = Field(10.0, gt=0, description="shortest time a factory stays failed or an instance dead")
    max_outage: float = Field(60.0, gt=0, description="longest time a factory stays failed or an instance dead")
    weights: dict[Literal["stop", "degraded", "flapping", "kill_mms", "kill_pms"], float] = Field(
        {"stop": 3.0, "degraded": 2.0, "flapping": 1.0, "kill_mms": 1.0, "kill_pms": 1.0},
        description="relative odds of each action (0 turns one off)")
    max_failed_factories: int = Field(1, ge=0, description="factories failed at once (the others keep capacity)")
    steady_timeout: float = Field(0.0, ge=0, description="at most this many seconds, wait before the first action "
                                                        "until the MMS and PMS leases have holders (processes "
                                                        "start for seconds: the distributed profile sets it); "
                                                        "0 starts at once")
    mms: str = Field("mms", description="the MMS component (its lease holder is the one killed)")
    mms_lease: str = Field("mms", description="the MMS replicas' lease")
    pms: str = Field("pms", description="the PMS component (sched.order_scheduler)")
    pms_lease: str = Field("order_scheduler", description="the PMS replicas' lease (the leader is killed)")
    watch_drains: bool = Field(True, description="check that a factory at HIGH risk held no not-yet-started order "
                                                 "when it failed while another factory had room (industry40.drains)")
    drain_grace: float = Field(5.0, gt=0, description="seconds from a factory's HIGH risk to its drain being due "
                                                      "(the MMS's check, its report, the PMS's transaction)")
    risk_topic: str = Field("mms/risk/+", description="where the MMS's mms.risk_changed arrive")
    monitor_transport: str | None = Field(None, description="the transport the MMS's risk changes, status verdicts, "
                                                            "failover events and the PMS's leadership travel on, "
                                                            "when not chaos's own (the distributed profile: kafka)")
    watch_downs: bool = Field(True, description="check over the run that every order of a DOWN factory moves within "
                                                "the MMS's detection bound plus one PMS scheduling pass and that none "
                                                "is assigned to a DOWN factory (industry40.downs)")
    heartbeat_topic: str = Field("factory/+/heartbeat", description="where the factories' beats arrive (level 1: "
                                                                    "the factory id)")
    status_topic: str = Field("forge/status/+", description="where the MMS's forge.status verdicts arrive")
    replay_stale: bool = Field(True, description="after each MMS failover, once the PMS accepted a report of the "
                                                 "new leader, replay the deposed leader's last accepted report with "
                                                 "its old epoch through the status_reporter tactic: the PMS must "
                                                 "refuse it (industry40.stale)")
    failover_topic: str = Field("mms/failover/+", description="where the MMS's mms.failover_event arrive")

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        _ordered(self, "interval", "outage", weights=self.weights)
        return self


class ModeApiParams(Settings):
    """``industry40.mode_api``: an operator's failure mode for a simulated factory over the plant's HTTP port."""

    path: str = Field("/simulator", pattern=r"^/[A-Za-z0-9._~/-]*$",
                      description="where the routes are mounted on the runtime's HTTP server (ctx.http): POST "
                                  "<path>/factories/<id>/mode; beside the PMS's /factories, not under it")
    factories: str = Field("factory", description="the factories' component name (its replicas are the ids the "
                                                  "route knows; another id is 404)")


class ClientsParams(Settings):
    """``industry40.clients``: simulated customers posting orders to the PMS's REST API."""

    enabled: bool = Field(True, description="post orders (false: the plant waits for a real client)")
    url: str | None = Field(None, description="the PMS's base URL (http://host:port); null: the REST app of this "
                                              "process (ctx.http), called in-process (embedded and simulated runs)")
    endpoints_topic: str | None = Field(
        None, description="find the PMS replicas by their sched.endpoint announcements on this topic (replicas on "
                          "ephemeral ports, the distributed profile): post to the leader, to another replica when "
                          "it does not answer; `url`, if given, is tried after them")
    path: str = Field("/orders", pattern=r"^/", description="where orders are posted")
    min_interval: float = Field(5.0, gt=0, description="shortest wait between two orders, seconds")
    max_interval: float = Field(20.0, gt=0, description="longest wait between two orders, seconds")
    first_after: float = Field(3.0, ge=0, description="seconds before the first order (the PMS elects a leader)")
    products: list[str] = Field(["gearbox", "valve", "sensor", "motor"], min_length=1,
                                description="productType of the orders, drawn at random")
    min_quantity: int = Field(5, ge=1, description="smallest quantity of an order")
    max_quantity: int = Field(60, ge=1, description="largest quantity of an order")
    deadline_after: float = Field(86_400.0, gt=0, description="an order's deadline, seconds after it is posted")
    attempts: int = Field(5, ge=1, description="tries of one order (same Idempotency-Key) on 5xx or no answer")
    retry_after: float = Field(2.0, gt=0, description="seconds between two tries of one order")
    timeout: float = Field(5.0, gt=0, description="seconds one HTTP request may take (real HTTP only)")

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        _ordered(self, "interval", "quantity")
        return self


class ErpLinkParams(Settings):
    """``industry40.erp_link``: the ERP's requests (forge-b2mml) as orders of the PMS (forge-sched), and the
    PMS's completions back as performance exports: the two plugins meet only through messages."""

    requests_topic: str = Field("b2mml/production_request", description="b2mml.production_request in (the inboxes)")
    actions_topic: str = Field("b2mml/request_action", description="b2mml.request_action in (Change, Cancel, Get)")
    states_topic: str = Field("b2mml/request_state", description="b2mml.request_state out (the exporter answers the "
                                                                   "ERP with Show/Respond)")
    completion_topic: str = Field("orders/completed", description="b2mml.order_completed out (the exporter's "
                                                                  "completion_topic)")
    order_requests: str = Field("orders/requests", description="sched.order_request out (the PMS's topics.requests)")
    order_replies: str = Field("orders/replies", description="sched.order_reply in (the PMS's topics.replies)")
    factory_completions: str = Field("factory/+/completed", description="sched.order_completed in (the factories)")
    retry_every: float = Field(2.0, gt=0, description="seconds before an unanswered order request is sent again "
                                                     "(no PMS leader meanwhile)")
    lead_time: float = Field(86_400.0, gt=0, description="deadline of a request without EndTime: seconds after "
                                                         "its StartTime (or its arrival)")
    export_grace: float = Field(30.0, gt=0, description="a completion older than this (seconds) at the end of the run "
                                                        "must have been exported (the check)")
    outbox: str | None = Field("outbox", description="the exporter's directory (relative: to the plant directory): "
                                                     "the check validates each file there; null: not checked")


class ErpParams(Settings):
    """``industry40.erp``: a simulated ERP dropping ProductionSchedules into the inbox folder and posting them
    to the HTTP inbox, re-sending some, and changing, cancelling and asking about earlier requests."""

    enabled: bool = Field(True, description="send schedules (false: the plant waits for a real ERP)")
    inbox: str = Field("inbox", description="the drop folder (b2mml.drop_folder's path; relative: to the plant "
                                            "directory)")
    http_path: str = Field("/b2mml/schedule", pattern=r"^/", description="the HTTP inbox's schedule route, called "
                                                                        "in-process on this process's HTTP app")
    http_url: str | None = Field(None, pattern=r"^https?://", description="the HTTP inbox's base URL "
                                 "(http://host:port), POSTed to over the network (the distributed profile: the inbox "
                                 "is another process); null: this process's HTTP app, in-process")
    http_attempts: int = Field(5, ge=1, description="tries of one POST to http_url (no answer: the inbox restarting)")
    http_retry_after: float = Field(2.0, ge=0, description="seconds between two tries of one POST")
    http_timeout: float = Field(10.0, gt=0, description="seconds one POST to http_url may take")
    version: Literal["V0600", "V0701"] = Field("V0600", description="B2MML release of the documents")
    first_after: float = Field(10.0, ge=0, description="seconds before the first schedule")
    min_interval: float = Field(120.0, gt=0, description="shortest wait between two documents, seconds")
    max_interval: float = Field(300.0, gt=0, description="longest wait between two documents, seconds")
    max_requests: int = Field(3, ge=1, description="requests in one schedule (1..this)")
    products: list[str] = Field(["gearbox", "valve", "sensor", "motor"], min_length=1,
                                description="MaterialDefinitionID of the requests")
    min_quantity: int = Field(5, ge=1, description="smallest quantity of a request")
    max_quantity: int = Field(40, ge=1, description="largest quantity of a request")
    weights: dict[Literal["folder", "http", "resend", "change", "cancel", "get"], float] = Field(
        {"folder": 4.0, "http": 4.0, "resend": 1.0, "change": 1.0, "cancel": 0.5, "get": 1.0},
        description="relative odds of each document: a new schedule by folder or HTTP, an earlier one again, a "
                    "Change (new quantity), Cancel or Get of an earlier request")

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        _ordered(self, "interval", "quantity", weights=self.weights)
        return self
