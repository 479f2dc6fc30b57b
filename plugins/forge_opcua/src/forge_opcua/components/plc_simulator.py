"""``opcua.plc_simulator``: simulated machines served over OPC UA, changing on the plant's clock.

Runs :class:`~forge_opcua.simulator.server.PlcServer` on the plant's event loop: every ``tick`` it
advances the machine models to the clock's time and writes what changed. Randomness comes from
``ctx.random``, so a plant seed gives the same machines. The server needs real sockets, hence the
real clock; the machine model alone (``forge_opcua.simulator.model.PlcModel``) runs under virtual
time. The address space is documented in ``forge_opcua.simulator.server`` and docs/plugins/opcua.md.
"""

from __future__ import annotations

from typing import Any

from forge_core import Component, ForgeError

from forge_opcua.settings import PlcSimulatorParams
from forge_opcua.simulator.server import PlcServer

__all__ = ["PlcSimulator"]


class PlcSimulator(Component):
    """An OPC UA server of simulated machines (state, fault code, good and total counts, cycle time)."""

    Params = PlcSimulatorParams
    params: PlcSimulatorParams
    plc: PlcServer | None = None

    async def start(self) -> None:
        if getattr(self.ctx.clock, "is_virtual", False):
            raise ForgeError(f"opcua.plc_simulator {self.name!r}: serves OPC UA over TCP, which needs the real "
                             "clock; under --simulate use forge_opcua.simulator.model.PlcModel directly")
        plc = PlcServer(self.params, self.ctx.random, self.ctx.clock.time(), who=f"opcua.plc_simulator {self.name!r}")
        try:
            await plc.start()
        except OSError as exc:
            raise ForgeError(f"opcua.plc_simulator {self.name!r}: cannot listen on {plc.endpoint}: {exc}") from exc
        self.plc = plc
        self.ctx.every(self.params.tick, self._tick, name="tick")

    async def _tick(self) -> None:
        if self.plc is not None:
            await self.plc.update(self.ctx.clock.time())

    async def stop(self) -> None:
        plc, self.plc = self.plc, None
        if plc is not None:
            await plc.stop()
            self._last_report = plc.report()

    def health(self) -> dict[str, Any]:
        if self.plc is None:
            return {"ready": False}
        return {"endpoint": self.plc.endpoint, "subscriptions": len(self.plc.subscriptions())}

    def report(self) -> dict[str, Any]:
        return self.plc.report() if self.plc is not None else getattr(self, "_last_report", {})
