"""A simulated chaos day of the OEE line, beside its 10 s target and the bare event loop.

    python benchmarks/bench_oee_sim.py [--hours 24] [--seed 7] [--twice]

Runs examples/oee_line (profile chaos: the simulated PLC's three machines reported tag by tag, the real
``sparkplug.edge_node`` and ``sparkplug.host`` on the simulated broker, broker outages, PLC restarts and
edge network losses, the gateway's 10 s window, the historian storing every sample, OEE every 15 min,
the audit's checks) on the virtual clock, as ``forge run examples/oee_line --simulate 24h --seed 7
--profile chaos`` does, in a copy of the manifest with a fresh SQLite database, and prints its wall and
CPU time (whole run and per simulated hour) beside the issue's target (a day in 10 s, issue 17) as a
ratio, the checks' verdict and the trace digest (``--twice``: a second run with the same seed must give
the same digest). Also prints the wall time of a bare virtual-clock run of the plant's periodic wake-ups
doing nothing: the event loop alone, the floor under any plant with these intervals. The machine is
shared: the load average is printed, and the CPU time is the steadier figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sim_day import day_main  # benchmarks/ is on sys.path when run as a script

PLANT = Path(__file__).resolve().parents[1] / "examples" / "oee_line"
TARGET = 10.0  # seconds of wall time for 24 simulated hours (issue 17)

#: (interval s, how many) of the plant's periodic wake-ups with the chaos profile's settings: the host's
#: lease renewal (the chaos profile's tactics.leader renew_every 2 s), the gateway's window (10 s), the edge
#: node's link proof (a second after each window's DATA), the historian's commit, percentiles and retention
#: sweep, the OEE publication. The PLC's parts and transitions, the edge node's DATA, the broker's deliveries,
#: the host's reorder check (at a gap's deadline, since stop 33) and the chaos are event-driven.
TIMERS = [(2.0, 1), (10.0, 1), (10.0, 1), (10.0, 1), (300.0, 1), (3600.0, 1), (900.0, 1)]


def derive(tmp: Path) -> Path:
    """A copy of the plant's manifest whose chaos profile stores in ``tmp`` (a fresh database each run)."""
    doc = yaml.safe_load((PLANT / "plant.yaml").read_text())
    doc["profiles"]["chaos"]["storage"] = {"url": f"sqlite:///{tmp}/oee_sim.db", "migrate_on_start": True}
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp


def details(summary: Any) -> list[str]:
    chaos = summary.reports.get("chaos", {})
    kinds = ("broker_outage", "plc_restart", "edge_network_loss", "skipped")
    audit = summary.reports.get("audit", {})
    return ["chaos: " + ", ".join(f"{k} {chaos.get(k, 0)}" for k in kinds),
            f"audit: {audit.get('samples')} samples, {audit.get('bus_messages')} host messages, "
            f"{audit.get('nbirths')} births, {audit.get('seq_gaps')} seq gaps, edge outbox at end "
            f"{audit.get('edge_outbox_at_end')}"]


if __name__ == "__main__":
    day_main(__doc__ or "", example="oee_line", derive=derive, name="oee_line", timers=TIMERS,
             details=details, target=TARGET)
