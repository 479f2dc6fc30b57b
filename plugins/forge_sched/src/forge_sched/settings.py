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
