"""The blade scheduler's logic, free of the bus, the clock and the lease: the machine table with its
balance counters (:mod:`.table`), the state handed from leader to successor (:mod:`.handover`) and
the reaction to storage alerts (:mod:`.storage`). ``components/blade_scheduler.py`` wires them to
messages, the leader election and the state store."""

from forge_sched.blades.handover import STATE_KEY, merge, snapshot
from forge_sched.blades.storage import Reaction, react
from forge_sched.blades.table import BLADES, Machine, MachineTable, other

__all__ = ["BLADES", "STATE_KEY", "Machine", "MachineTable", "Reaction", "merge", "other", "react", "snapshot"]
