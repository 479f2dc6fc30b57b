"""Instructions a factory beat costs ``mms.factory_monitor``'s classes, step by step (run under cachegrind).

    python plugins/forge_mms/benchmarks/bench_beat_path.py BEATS [--step add|store|observe|all] [--check-every S]

BEATS beats of 4 factories (1 a second each, industry40's payloads: cpu, memory, cumulative errors,
latencyMs) go through what a replica does per beat in ``FactoryMonitor.on_beat``, with industry40's
settings (heartbeat interval 1 s, risk window 300 s, error window 30 s): ``add`` ``BeatHistory.add``
(the beat read, the history and the risk windows kept), ``store`` + ``MonitorStore.add_beat`` (the
handover buffer, trimmed as a follower trims it), ``observe`` + ``FaultDetector.observe``; ``all`` +
a check every ``--check-every`` s (1: the leader, 5: the shadow): silence verdicts, then each
factory's risk window advanced and assessed, as ``FactoryMonitor.check`` does. Run it for two
values of BEATS under cachegrind (``PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no
--cachegrind-out-file=/dev/null python ...``, e.g. 4000 and 40000): the difference of their
I refs / the difference of BEATS is a beat's cost; the steps' differences give the per-step table.
"""

from __future__ import annotations

import argparse
import gc
from types import SimpleNamespace

from forge_mms.monitoring.beats import BeatHistory
from forge_mms.monitoring.faults import FaultDetector
from forge_mms.settings import RiskRulesSettings
from forge_mms.storage.store import MonitorStore
from forge_mms.tactics.risk import RuleBasedRisk

STEPS = ("add", "store", "observe", "all")
FACTORIES = ("factory-1", "factory-2", "factory-3", "factory-4")


def run(beats: int, step: str, check_every: float) -> None:
    heartbeat = SimpleNamespace(interval=1.0, degraded_after=1.5, error_rate_threshold=0.2, error_window=30.0,
                                recover_after=5)
    faults = FaultDetector(heartbeat, max_gap=3.0, missed_beats=3)
    risk_window = 300.0
    history = BeatHistory(risk_window, late_after=faults.late_after)
    store = MonitorStore(lambda: None, offload=False, batch_size=50)  # buffered, never written (a follower)
    risk = RuleBasedRisk(RiskRulesSettings())
    for factory in FACTORIES:  # the monitor's first check makes the windows and their fits
        risk.assess(factory, history.window(factory, risk_window, 0.0), 0.0)
    payloads = [{"factoryId": f, "timestamp": 0.0, "metrics": {"cpu": 31.5, "memory": 42.5, "errors": 0},
                 "latencyMs": 20.0} for f in FACTORIES]
    count = len(FACTORIES)
    next_check = check_every
    for i in range(beats):
        payload = payloads[i % count]
        at = 1.0 + i / count + 0.0125 * (i % 7)
        payload["timestamp"] = at - 0.004
        payload["latencyMs"] = 20.0 + (i % 11) * 0.1
        if i % 97 == 0:
            payload["metrics"]["errors"] += 1
        beat = history.add(payload["factoryId"], at, payload)
        if step == "add":
            continue
        store.add_beat(beat)
        if i % 120 == 0:
            store.trim(at - 30.0)
        if step == "store":
            continue
        faults.observe(beat)
        if step == "observe" or at < next_check:
            continue
        next_check += check_every
        faults.evaluate(at)
        for factory in faults.statuses():
            risk.assess(factory, history.window(factory, risk_window, at), at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("beats", type=int)
    parser.add_argument("--step", choices=STEPS, default="all")
    parser.add_argument("--check-every", type=float, default=1.0)
    args = parser.parse_args()
    gc.disable()  # the collector's passes land on other beats run to run
    run(args.beats, args.step, args.check_every)


if __name__ == "__main__":
    main()
