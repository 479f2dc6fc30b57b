"""Test helpers of the OEE line: simulated machines' values as the Sparkplug host puts them on the bus.

:func:`host_messages` replays :class:`forge_opcua.simulator.model.Machine` models the way the whole
chain reports them (a value when it changed, at the PLC's source timestamp in ms, one metric per
``sparkplug.metrics``), so the historian and the OEE component can be checked against the models'
ground truth without sockets, under virtual time.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from forge_opcua.settings import MachineTiming
from forge_opcua.simulator.model import STATES, Machine

__all__ = ["host_messages", "machines"]


def machines(ids: dict[str, float], seed: int, start: float = 0.0, timing: MachineTiming | None = None,
             ) -> dict[str, Machine]:
    """One model per machine id (-> ideal cycle time), each with its own stream of the seed."""
    rng = random.Random(seed)
    timing = timing or MachineTiming()
    return {m: Machine(m, timing, cycle, random.Random(rng.getrandbits(64)), start) for m, cycle in ids.items()}


def _metrics(device: str, seq: int, kind: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    return {"host": "analytics", "group": "line1", "node": "edge-1", "device": device, "kind": kind, "seq": seq % 256,
            "timestamp": metrics[0]["timestamp"], "metrics": metrics}


def _metric(name: str, datatype: str, value: Any, at: float) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "value": value, "timestamp": round(at * 1000), "historical": False,
            "quality": 192}


def host_messages(models: dict[str, Machine], until: float, step: float = 0.25) -> Iterator[tuple[float, dict]]:
    """``(plant time, sparkplug.metrics body)`` up to ``until``: a birth per machine, then what changed."""
    seq = 0
    t = min(m.now for m in models.values())
    for m in models.values():
        yield t, _metrics(m.id, seq, "birth", [
            _metric("State", "String", m.state, m.state_since), _metric("StateCode", "Int32", STATES[m.state],
                                                                        m.state_since),
            _metric("FaultCode", "Int32", m.fault_code, m.state_since), _metric("GoodCount", "UInt32", m.good, t),
            _metric("TotalCount", "UInt32", m.total, t),
            _metric("IdealCycleTime", "Double", m.ideal_cycle_time, t)])
        seq += 1
    while t < until:
        t = min(t + step, until)
        for m in models.values():
            state, fault, good, total = m.state, m.fault_code, m.good, m.total
            m.advance(t)
            changed = []
            if m.fault_code != fault:
                changed.append(_metric("FaultCode", "Int32", m.fault_code, m.state_since))
            if m.state != state:
                changed += [_metric("State", "String", m.state, m.state_since),
                            _metric("StateCode", "Int32", STATES[m.state], m.state_since)]
            if m.good != good:
                changed.append(_metric("GoodCount", "UInt32", m.good, m.last_part_at))
            if m.total != total:
                changed.append(_metric("TotalCount", "UInt32", m.total, m.last_part_at))
            for metric in changed:
                seq += 1
                yield t, _metrics(m.id, seq, "data", [metric])
