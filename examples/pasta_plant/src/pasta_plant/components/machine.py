"""``pasta.cutting_machine``: a cutting machine of the original plant.

INITIALIZING -> WAITING_FOR_ASSIGNMENT -> WORKING -> RECOVERY -> WAITING_FOR_ASSIGNMENT.
It beats every ``heartbeat_interval`` on ``heartbeats`` (``bladeType`` only while WORKING),
takes a blade from AssignBlade, swaps it on SwapBlade (``swap_time``, then BladeSwapped), and
goes into RECOVERY for ``recovery_time`` on KillMachine. Commands name a ``machineId``; a
machine ignores the others' commands. AssignBlade and SwapBlade are a leader's commands: they
are fenced by the scheduler's lease epoch, so a deposed scheduler's late command is dropped; with
the plant key (``command_secret``) they must be signed by the lease holder too, so a forger's
command is dropped and counted (``forged_dropped``) whatever epoch it claims, and moves no fence.
The epochs it accepted (``accepted_epochs``, over all its lives) are checked against the lease's
grant history by ``pasta_plant.epoch_checks``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from forge_core import Check, Component, Envelope, Publishes, epoch_of, subscribe
from pasta_plant.ledger import ledger
from pasta_plant.odometer import odometer
from pasta_plant.settings import MachineParams

INITIALIZING = "INITIALIZING"
WAITING = "WAITING_FOR_ASSIGNMENT"
WORKING = "WORKING"
RECOVERY = "RECOVERY"


class CuttingMachine(Component):
    Params = MachineParams
    publishes = (Publishes("sched.machine_heartbeat", topic="heartbeats", key="machineId"),
                 Publishes("sched.blade_swapped", topic="productionPlan/bladeSwapped", key="machineId"))
    params: MachineParams

    async def start(self) -> None:
        self.machine_id = self.ctx.replica + self.params.machine_id_offset
        self.lease = self.params.lease
        self.record = ledger(self.ctx).machine(self.machine_id)
        self.record.attach(self.ctx)
        self.record.alive = True
        if self.params.command_secret:  # the plant key: only the lease holder's signed commands pass the fence
            self.ctx.fence.keys[self.lease] = self.params.command_secret.encode()
        if self.record.newest_epoch is not None:  # what the machine remembers across a restart
            self.ctx.fence.newest[self.lease] = self.record.newest_epoch
        self._set(INITIALIZING, None)
        self._recent: deque[str] = deque(maxlen=64)  # command ids: a redelivery is not a new command
        self._swap: asyncio.Task[Any] | None = None
        self._recovery: asyncio.Task[Any] | None = None
        #: what this machine sent and received over the run, surviving its SIGKILLs (pasta_plant.odometer):
        #: heartbeats counted once ctx.publish returned (handed to the transport: in flight to the broker
        #: or in its durable outbox), commands by epoch on first delivery (count_checks compares them)
        self.odometer = odometer(self.ctx, f"machine-{self.machine_id}")
        self._set(WAITING, None)
        self.ctx.every(self.params.heartbeat_interval, self.beat, name="heartbeat", initial_delay=0)

    async def stop(self) -> None:
        self.record.alive = False

    def _set(self, state: str, blade: str | None) -> None:
        self.state, self.blade = state, blade
        self.record.state, self.record.blade = state, blade

    # -- heartbeats ------------------------------------------------------------------------
    async def beat(self) -> None:
        if self.state == RECOVERY and not self.params.beat_in_recovery:
            return
        payload: dict[str, Any] = {"title": "heartbeat", "machineId": self.machine_id}
        if self.state == WORKING and self.blade is not None:
            payload["bladeType"] = self.blade
        await self.ctx.publish("heartbeats", "sched.machine_heartbeat", payload, key=str(self.machine_id))
        if "bladeType" in payload:
            self.odometer.add("beats", "bladed_beats", at=self.ctx.clock.time())
        else:
            self.odometer.add("beats")
        self.record.last_beat = self.ctx.clock.time()

    # -- commands --------------------------------------------------------------------------
    def _mine(self, envelope: Envelope) -> bool:
        if envelope.payload.get("machineId") != self.machine_id:
            return False
        if envelope.id in self._recent:
            self.record.duplicates += 1
            return False
        self._recent.append(envelope.id)
        self.record.accepted(epoch_of(envelope))
        epoch = epoch_of(envelope)
        if epoch is not None:
            self.odometer.add(f"received:{epoch}")
        return True

    def _applied(self, envelope: Envelope) -> None:
        epoch = epoch_of(envelope)
        if epoch is None:
            return
        self.record.applied.append((self.ctx.clock.time(), epoch, envelope.type))
        newest = self.ctx.fence.newest.get(self.lease, epoch)
        self.record.newest_epoch = max(newest, self.record.newest_epoch or newest)

    @subscribe("productionPlan/assignBlade", types=["sched.assign_blade"], shared=False, fenced="scheduler")
    async def on_assign(self, envelope: Envelope) -> None:
        if not self._mine(envelope):
            return
        blade = envelope.payload["bladeType"]
        if self.state == WORKING:
            detail = f"AssignBlade {blade} (epoch {epoch_of(envelope)}) while WORKING with {self.blade}"
            self.record.double_assigns.append((self.ctx.clock.time(), detail))
            self.ctx.log.warning("machine %d: %s; kept %s", self.machine_id, detail, self.blade)
            return
        if self.state != WAITING:
            self.record.ignored += 1
            self.ctx.log.info("machine %d: AssignBlade ignored in %s", self.machine_id, self.state)
            return
        self._applied(envelope)
        self.record.assigns += 1
        self._set(WORKING, blade)

    @subscribe("productionPlan/swapBlade", types=["sched.swap_blade"], shared=False, fenced="scheduler")
    async def on_swap(self, envelope: Envelope) -> None:
        if not self._mine(envelope):
            return
        if self.state not in (WORKING, WAITING):
            self.record.ignored += 1
            self.ctx.log.info("machine %d: SwapBlade ignored in %s", self.machine_id, self.state)
            return
        self._applied(envelope)
        if self._swap is not None and not self._swap.done():
            self._swap.cancel()
        self._swap = self.ctx.spawn(self._swapping(envelope.payload["bladeType"]), name="swap")

    async def _swapping(self, blade: str) -> None:
        await self.ctx.clock.sleep(self.params.swap_time)
        if self.state == RECOVERY:
            return
        self._set(WORKING, blade)
        self.record.swaps += 1
        await self.ctx.publish("productionPlan/bladeSwapped", "sched.blade_swapped",
                               {"title": "BladeSwapped", "machineId": self.machine_id, "bladeType": blade},
                               key=str(self.machine_id))

    @subscribe("updateManager/killMachine", types=["pasta.kill_machine"], shared=False)
    async def on_kill(self, envelope: Envelope) -> None:
        if not self._mine(envelope):
            return
        self.record.kills += 1
        if self._swap is not None and not self._swap.done():
            self._swap.cancel()
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()
        self._set(RECOVERY, None)
        self._recovery = self.ctx.spawn(self._recovering(), name="recovery")

    async def _recovering(self) -> None:
        await self.ctx.clock.sleep(self.params.recovery_time)
        self._set(WAITING, None)
        await self.beat()  # back: announce at once, as a restarted machine does

    # -- views -----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {"machineId": self.machine_id, "state": self.state, "blade": self.blade}

    def report(self) -> dict[str, Any]:
        r = self.record
        return {"state": self.state, "blade": self.blade, "assigns": r.assigns, "swaps": r.swaps,
                "recoveries": r.kills, "incarnations": r.incarnations, "stale_rejected": r.rejected_stale,
                "unstamped_rejected": r.rejected_unstamped, "ignored": r.ignored,
                "forged_dropped": r.forged_dropped, "accepted_epochs": sorted(r.accepted_epochs),
                "beats_sent": self.odometer["beats"], "bladed_beats_sent": self.odometer["bladed_beats"],
                "odometer": self.odometer.view()}

    def checks(self) -> list[Check]:
        r = self.record
        doubles = r.double_assigns
        return [
            Check("never assigned twice without a swap", not doubles,
                  f"{len(r.applied)} commands applied" if not doubles else f"{len(doubles)}: {doubles[0][1]}"),
            Check("applied epochs never go back", r.epochs_monotonic(),
                  f"{r.rejected_stale} stale command(s) rejected"),
        ]
