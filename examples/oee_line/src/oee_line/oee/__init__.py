"""OEE (ISO 22400-2 time model) and the six big losses: pure functions on times, states and counts."""

from __future__ import annotations

from oee_line.oee.figures import OeeFigures, combine, compute
from oee_line.oee.losses import (
    CounterDeltas,
    CounterEvent,
    CounterSample,
    LossSettings,
    MachineWindow,
    SixBigLosses,
    StateChange,
    counter_deltas,
    machine_window,
)
from oee_line.oee.shifts import Shift, ShiftWindow, shift_windows

__all__ = ["CounterDeltas", "CounterEvent", "CounterSample", "LossSettings", "MachineWindow", "OeeFigures", "Shift",
           "ShiftWindow", "SixBigLosses", "StateChange", "combine", "compute", "counter_deltas", "machine_window",
           "shift_windows"]
