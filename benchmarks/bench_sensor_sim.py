"""A simulated day of the sensor monitoring plant, beside its 10 s target and the bare event loop.

    python benchmarks/bench_sensor_sim.py [--hours 24] [--seed 7] [--twice]

Runs examples/sensor_monitoring (its default, embedded profile: nine sensors on the memory bus, one
mms.sensor_processor, the live view's storage poll, SQLite) on the virtual clock, as
``forge run examples/sensor_monitoring --simulate 24h --seed 7`` does, in a copy with a fresh
database. The plant has no chaos profile: what ``--simulate`` runs is its anomaly injection (the
seeded random draw, 2 an hour per sensor, and the schedule's four), judged by the processors and
checked at the end (every reading stored once, every anomaly alerted, no alert without one, alerts
cleared). Its failure drills need a Kafka cluster (``forge drill``) and are not part of a simulated run.

Prints wall and CPU time (whole run and per simulated hour) beside the issue's target (a day in 10 s)
as a ratio, the checks' verdict and the trace digest (``--twice``: a second run with the same seed
must give the same digest and checks), and the wall time of a bare virtual-clock run of the plant's
periodic wake-ups doing nothing: the event loop alone, the floor under any plant with these
intervals, and the design's floor: the plant's own work per reading done in plain Python on the same
virtual asyncio loop, without Forge (``bench_sensor_floor.py``, which also prints what each part costs).
The machine is shared: the load average is printed, and the CPU time is the steadier figure.
"""

from __future__ import annotations

from typing import Any

from bench_sensor_floor import floor_day  # benchmarks/ is on sys.path when run as a script
from sensor_monitoring.testing import derive
from sim_day import day_main

TARGET = 10.0  # seconds of wall time for 24 simulated hours (issue 17)

#: (interval s, how many) of the plant's periodic wake-ups: the nine sensors' samples (1 s; ten times
#: as often during a burst, a few minutes a day), the live view's storage poll (1 s), the processor's
#: consumer_status row (5 s). Judging and storing the readings is event-driven.
TIMERS = [(1.0, 9), (1.0, 1), (5.0, 1)]


def details(summary: Any) -> list[str]:
    sensors = [r for name, r in summary.reports.items() if name.startswith("sensors")]
    processors = summary.reports.get("processors", {})
    produced, anomalies = sum(r.get("produced", 0) for r in sensors), sum(r.get("anomalies", 0) for r in sensors)
    return [f"readings: produced {produced}, stored {processors.get('stored')}, anomalies {anomalies}, alerts "
            f"raised {processors.get('alerts_raised')} cleared {processors.get('alerts_cleared')}, dead letters "
            f"{processors.get('malformed')}, batches {processors.get('batches')}"]


if __name__ == "__main__":
    day_main(__doc__ or "", example="sensor_monitoring", derive=derive, name="sensor_monitoring", timers=TIMERS,
             profile=None, setting="embedded profile, anomalies on", details=details, target=TARGET,
             design_floor=lambda seconds, seed: floor_day(seconds, seed, loop="asyncio")[0])
