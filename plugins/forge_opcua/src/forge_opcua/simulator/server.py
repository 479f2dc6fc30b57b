"""The simulated PLC's OPC UA server: a :class:`PlcModel` exposed by an asyncua ``Server``.

Address space (namespace ``urn:forge:opcua:plc-simulator`` unless configured; string node ids, so
they stay the same across restarts; ``ns=<i>`` is that namespace's index: 1 by default, where it is
also the server's application URI, else 2; ``nsu=<uri>;s=...`` does not depend on it)::

    Objects/
      Machines/                   ns=<i>;s=Machines                       Folder
        <id>/                     ns=<i>;s=<id>                           Object, one per machine
          State                   ns=<i>;s=<id>.State                     String: running|idle|down|setup
          StateCode               ns=<i>;s=<id>.StateCode                 Int32: idle 0, running 1, down 2, setup 3
          FaultCode               ns=<i>;s=<id>.FaultCode                 Int32: 0 unless down
          GoodCount               ns=<i>;s=<id>.GoodCount                 UInt32: good parts since start
          TotalCount              ns=<i>;s=<id>.TotalCount                UInt32: all parts since start
          IdealCycleTime          ns=<i>;s=<id>.IdealCycleTime            Double: seconds per part
      Diagnostics/                ns=<i>;s=Diagnostics                    Object
        Subscriptions             ns=<i>;s=Diagnostics.Subscriptions      Int32: subscriptions of all sessions
        MonitoredItems            ns=<i>;s=Diagnostics.MonitoredItems     Int32: their monitored items
        Ramp                      ns=<i>;s=Diagnostics.Ramp               Int64: counts up at ramp_rate (benchmarks)

Values carry the model's source timestamp (the plant clock's time of the transition or the part),
so a client sees when a state changed, not when the tick noticed it.
"""

from __future__ import annotations

import logging
import random
import socket
from typing import Any

from asyncua import Server, ua

from forge_opcua.client.convert import make_node_id, utc
from forge_opcua.security import CertificateTrust, configure_server
from forge_opcua.settings import PlcSimulatorParams, node_id_text
from forge_opcua.simulator.model import STATES, Machine, PlcModel

__all__ = ["PlcServer", "node_id_text"]

log = logging.getLogger("forge.opcua.simulator")

_VARIABLES: tuple[tuple[str, ua.VariantType], ...] = (
    ("State", ua.VariantType.String), ("StateCode", ua.VariantType.Int32), ("FaultCode", ua.VariantType.Int32),
    ("GoodCount", ua.VariantType.UInt32), ("TotalCount", ua.VariantType.UInt32),
    ("IdealCycleTime", ua.VariantType.Double))


class PlcServer:
    """Serve ``params.machines`` on ``opc.tcp://host:port/path``; call :meth:`update` with the clock's time."""

    def __init__(self, params: PlcSimulatorParams, rng: random.Random, now: float, *,
                 who: str = "opcua.plc_simulator") -> None:
        self.params = params
        self.who = who
        self.model = PlcModel(params.machines, params.timing, rng, now, cycle_times=params.cycle_times)
        self.port = params.port or _free_port(params.host)
        self.server: Server | None = None
        self.trust: CertificateTrust | None = None
        self.namespace_index = 0
        self.ramp = 0
        self._written: dict[str, Any] = {}
        self._nodes: dict[str, ua.NodeId] = {}

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.params.host}:{self.port}{self.params.path}"

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("Forge PLC simulator")
        self.trust = await configure_server(server, self.params.security, who=f"{self.who} at {self.endpoint}")
        ns = self.namespace_index = await server.register_namespace(self.params.namespace)
        machines = await server.nodes.objects.add_folder(make_node_id("Machines", ns), ua.QualifiedName("Machines", ns))
        for machine in self.model.machines.values():
            obj = await machines.add_object(make_node_id(machine.id, ns), ua.QualifiedName(machine.id, ns))
            for name, variant in _VARIABLES:
                await self._add(obj, f"{machine.id}.{name}", name, self._value(machine, name), variant,
                                self._stamp(machine, name))
        diagnostics = await server.nodes.objects.add_object(make_node_id("Diagnostics", ns),
                                                            ua.QualifiedName("Diagnostics", ns))
        for name, variant in (("Subscriptions", ua.VariantType.Int32), ("MonitoredItems", ua.VariantType.Int32),
                              ("Ramp", ua.VariantType.Int64)):
            await self._add(diagnostics, f"Diagnostics.{name}", name, 0, variant)
        await server.start()
        self.server = server
        log.info("%s serving %d machines on %s", self.who, len(self.model.machines), self.endpoint)

    async def _add(self, parent: Any, key: str, name: str, value: Any, variant: ua.VariantType,
                   stamp: float | None = None) -> None:
        """A variable with its first value. A machine's values are stamped with the model's time (``stamp``), not
        with asyncua's clock when the variable was added: the server starts after the model, and a part the model
        made meanwhile (stamped when it was made) would otherwise look older than the count before it."""
        node = await parent.add_variable(make_node_id(key, self.namespace_index),
                                         ua.QualifiedName(name, self.namespace_index), ua.Variant(value, variant))
        if stamp is not None:
            await node.write_value(ua.DataValue(ua.Variant(value, variant), SourceTimestamp=utc(stamp),
                                                ServerTimestamp=utc(stamp)))
        self._nodes[key] = node.nodeid
        self._written[key] = value

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    @staticmethod
    def _value(machine: Machine, name: str) -> Any:
        return {"State": machine.state, "StateCode": STATES[machine.state], "FaultCode": machine.fault_code,
                "GoodCount": machine.good, "TotalCount": machine.total,
                "IdealCycleTime": machine.ideal_cycle_time}[name]

    @staticmethod
    def _stamp(machine: Machine, name: str) -> float:
        """When the machine did what ``name`` shows: its state's start, or its last part (its start before one)."""
        return machine.state_since if name in ("State", "StateCode", "FaultCode") else machine.last_part_at

    async def update(self, now: float) -> int:
        """Advance the machines to ``now`` and write what changed; returns the number of writes."""
        writes = 0
        for machine in self.model.advance(now):
            for name, variant in _VARIABLES:
                writes += await self._write(f"{machine.id}.{name}", self._value(machine, name), variant,
                                            self._stamp(machine, name), now)
        writes += await self._write_diagnostics(now)
        return writes

    async def advance_ramp(self, now: float) -> None:
        """Count Diagnostics.Ramp up by one, stamped ``now`` (a benchmark's tag change)."""
        self.ramp += 1
        await self._write("Diagnostics.Ramp", self.ramp, ua.VariantType.Int64, now, now)

    async def _write_diagnostics(self, now: float) -> int:
        if self.server is None:
            return 0
        subscriptions = list(self.server.iserver.subscription_service.subscriptions.values())
        items = sum(len(sub.monitored_item_srv._monitored_items) for sub in subscriptions)
        return (await self._write("Diagnostics.Subscriptions", len(subscriptions), ua.VariantType.Int32, now, now)
                + await self._write("Diagnostics.MonitoredItems", items, ua.VariantType.Int32, now, now))

    async def _write(self, key: str, value: Any, variant: ua.VariantType, source: float, server: float) -> int:
        """Write ``value`` if it changed; source timestamp: when the machine did it, server: the tick."""
        if self.server is None or self._written.get(key) == value:
            return 0
        self._written[key] = value
        data = ua.DataValue(ua.Variant(value, variant), SourceTimestamp=utc(source), ServerTimestamp=utc(server))
        await self.server.write_attribute_value(self._nodes[key], data)
        return 1

    def subscriptions(self) -> dict[int, dict[str, Any]]:
        """The server's subscriptions now: id -> session, publishing interval (ms), monitored items."""
        if self.server is None:
            return {}
        return {sub_id: {"session": str(sub.session_id), "publishing_interval": sub.data.RevisedPublishingInterval,
                         "monitored_items": len(sub.monitored_item_srv._monitored_items)}
                for sub_id, sub in self.server.iserver.subscription_service.subscriptions.items()}

    def report(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "machines": self.model.totals(),
                "refused_certificates": self.trust.refused if self.trust else 0}


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
