"""Params of the pasta components (``components.<name>.params`` in plant.yaml), declared once.

The defaults are the numbers of the original system.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from forge_core import Settings


class MachineParams(Settings):
    """``pasta.cutting_machine``."""

    heartbeat_interval: float = Field(5.0, gt=0, description="seconds between heartbeats on `heartbeats`")
    swap_time: float = Field(2.0, ge=0, description="seconds a blade swap takes")
    recovery_time: float = Field(10.0, gt=0, description="seconds in RECOVERY after a KillMachine")
    beat_in_recovery: bool = Field(False, description="keep beating while in RECOVERY (the original machine is "
                                                      "silent)")
    machine_id_offset: int = Field(0, ge=0, description="machineId = replica + this (several machine groups in one "
                                                        "plant)")
    lease: str = Field("scheduler", description="the lease whose epochs fence commands")
    command_secret: str | None = Field(
        None, min_length=16,
        description="plant key (the schedulers' command_secret): AssignBlade/SwapBlade without the lease holder's "
                    "valid `signature` are dropped as forged (report: forged_dropped) and move no fence. From the "
                    "environment (${env:...}), never written in the file")

    secret_fields: ClassVar[frozenset[str]] = frozenset({"command_secret"})


class SortingParams(Settings):
    """``pasta.sorting``."""

    fresh_amount: int = Field(4, ge=0, le=10, description="fresh units of every 10 a heartbeat produces")
    min_amount: int = Field(0, ge=0, description="lower clamp of the fresh amount")
    max_amount: int = Field(10, ge=0, description="upper clamp of the fresh amount")


class ProductionParams(Settings):
    """``pasta.batch_production``."""

    stock_target: int = Field(200, ge=0, description="total stock the reductions bring storage back to")
    batch_size: int = Field(10, ge=1, description="units per heartbeat: fresh = freshAmount, dry = batch_size - "
                                                  "freshAmount")
    fresh_amount: int = Field(4, ge=0, le=10, description="the share assumed until the first FreshAmountChanged")
    category_capacity: float = Field(100.0, gt=0,
                                     description="units that make 100 % of one category (A/B x fresh/dry)")
    publish_new_batch: bool = Field(False, description="publish pasta.new_batch on storage/newBatch for every batch")
    fresh_start: bool = Field(True, description="on the first start of a run, bring storage back to the seed stock "
                                                "(20 batches of 10); false keeps the stock of earlier runs")
    virtual_commit_beats: int = Field(50, ge=1, description="under a virtual clock only: beats per transaction, "
                                                            "committed before any other connection reads, at stop "
                                                            "and at a kill (1: a commit per beat, as in real time)")


class ChaosParams(Settings):
    """``pasta.chaos``."""

    enabled: bool = Field(False, description="off unless a profile (chaos) turns it on")
    min_interval: float = Field(5.0, gt=0, description="shortest wait between two kills")
    max_interval: float = Field(15.0, gt=0, description="longest wait between two kills")
    min_restart: float = Field(10.0, gt=0, description="shortest time a killed part stays dead")
    max_restart: float = Field(30.0, gt=0, description="longest time a killed part stays dead")
    max_machines: int = Field(1, ge=0, description="machines dead at once")
    max_schedulers: int = Field(1, ge=0, description="schedulers dead at once")
    revive_grace: float = Field(0.0, ge=0, description="seconds a revived part still counts as dead when chaos "
                                                       "picks its next victim: a process needs them to start "
                                                       "(the distributed profile sets it); 0 in one process")
    machines: str = Field("machine", description="the machines' component name")
    schedulers: str = Field("scheduler", description="the schedulers' component name")
    lease: str = Field("scheduler", description="the schedulers' lease")
    machine_kill: Literal["process", "command"] = Field(
        "process", description="process: runtime.kill (SIGKILL); command: KillMachine -> RECOVERY")
    rebalance_bound: float = Field(32.0, gt=0,
                                   description="seconds after a machine death by which both blades must be cut "
                                               "again (discovery 12 + health check 5 + timeout 10 + swap 2 + beat)")
    failover_bound: float | None = Field(None, description="seconds a successor may take to lead (default: lease "
                                                           "ttl + retry_every + 1)")
    check_every: float = Field(0.5, gt=0, description="how often the leader and the blade coverage are looked at")
    steady_timeout: float = Field(120.0, gt=0, description="seconds from start within which the plant must be "
                                                            "steady (a leader, both blades cut) before the first kill")


class MonitorParams(Settings):
    """``pasta.monitor``."""

    render: Literal["auto", "always", "never"] = Field(
        "auto", description="auto: a rich live view when stdout is a terminal and the clock is real")
    refresh: float = Field(1.0, gt=0, description="seconds between redraws of the live view (only drawn on a "
                                                  "terminal, real clock)")
    rate_window: float = Field(10.0, gt=0, description="seconds over which message rates are measured")
    keep_events: int = Field(10, ge=1, description="alerts and chaos events kept")
    lease: str = Field("scheduler", description="the lease whose holder is shown as the leader")
    grants_every: float = Field(5.0, gt=0, description="seconds between two reads of the lease's grant history "
                                                       "(report: granted_epochs, for the epoch check)")
