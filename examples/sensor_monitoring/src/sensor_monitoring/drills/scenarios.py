"""The sensor plant's four failure drills (``forge drill examples/sensor_monitoring --list``).

Each is a :class:`~sensor_monitoring.drills.base.SensorDrill`: the common run (servers, plant,
warm-up, markers, drain, report) around one fault and its heal. Recovery bounds are derived from the
profile's settings (:class:`~sensor_monitoring.drills.base.PlantSettings`) plus :data:`SLACK`; the
derivations are in docs/examples/sensor_monitoring_drills.md.
"""

from __future__ import annotations

import bisect
import signal
import time
from collections import Counter
from typing import Any

import sqlalchemy as sa

from forge_core.plugin import DrillFigure, DrillReport
from sensor_monitoring.drills.base import SLACK, DrillRun, PlantSettings, SensorDrill
from sensor_monitoring.drills.harness import DrillFailed
from sensor_monitoring.drills.observe import QUIET


def partitions(run: DrillRun) -> dict[int, tuple[int, list[int]]]:
    """partition -> (index of the broker leading it, the in-sync replicas), from the cluster's metadata
    (a quiet client of the drill's own: the broker it killed refuses it, as expected)."""
    from confluent_kafka.admin import AdminClient

    s = run.settings
    admin = AdminClient({"bootstrap.servers": run.h.kafka.bootstrap, **QUIET})
    deadline = time.monotonic() + 30
    while True:
        try:
            meta = admin.list_topics(s.topic, timeout=5).topics[s.topic]
            found = {p: (m.leader, sorted(m.isrs)) for p, m in meta.partitions.items()}
            if meta.error is None and len(found) == s.partitions and all(lead >= 0 for lead, _ in found.values()):
                return found
        except Exception:  # metadata while brokers come and go: ask again
            pass
        if time.monotonic() > deadline:
            raise DrillFailed(f"no leader for every partition of {s.topic} after 30s")
        time.sleep(0.3)


def leaders(run: DrillRun) -> dict[int, int]:
    """partition -> index of the broker leading it."""
    return {p: lead for p, (lead, _) in partitions(run).items()}


def busiest_broker(run: DrillRun, prefer: int | None = None) -> tuple[int, list[int]]:
    """The broker leading most ``sensor-data`` partitions (on a tie ``prefer``, e.g. the group's
    coordinator: the worst case), and those partitions."""
    led = leaders(run)
    counts = Counter(led.values())
    most = max(counts.values())
    tied = sorted(b for b, n in counts.items() if n == most)
    broker = prefer if prefer in tied else tied[0]
    return broker, sorted(p for p, b in led.items() if b == broker)


def processor_with_partitions(run: DrillRun) -> tuple[str, list[int]]:
    """A processor instance holding partitions now (from its latest ``partitions_assigned`` event), and
    them; without usable events the first processor instance, partitions unknown."""
    pids = run.h.children()
    names = sorted(n for n in pids if n.startswith("processors"))
    if not names:
        raise DrillFailed(f"the plant runs no processor process (its processes: {', '.join(sorted(pids))})")
    held: dict[str, list[int]] = {}
    with run.h.db().connect() as conn:
        rows = conn.execute(sa.text("SELECT source, kind, detail FROM system_events WHERE kind IN "
                                    "('partitions_assigned', 'partitions_revoked', 'partitions_lost') ORDER BY id"))
        for source, kind, detail in rows:
            parts = {int(p[1]) if isinstance(p, list | tuple) else int(p)
                     for p in (detail or {}).get("partitions", [])
                     if not isinstance(p, list | tuple) or p[0] == run.settings.topic}
            mine = set(held.get(source, []))
            held[source] = sorted((mine | parts) if kind == "partitions_assigned" else (mine - parts))
    for name in names:
        for source, holding in held.items():
            if holding and (source == name or source.endswith(f":{name}") or source.startswith(f"{name}:")):
                return name, holding
    return names[0], []


class BrokerFailure(SensorDrill):
    name = "broker-failure"
    description = ("SIGKILL the broker leading most sensor-data partitions; leaders move, producers and the group "
                   "go on; restart it and it rejoins every ISR")

    def fault(self, run: DrillRun) -> dict[str, Any]:
        coordinator = run.lag.coordinator() if run.lag else None
        broker, parts = busiest_broker(run, prefer=coordinator)
        run.h.kafka.kill(broker)
        run.state.update(broker=broker, partitions=parts, coordinator=coordinator)
        run.h.marker("broker_down", broker=broker, partitions=parts, how="SIGKILL", group_coordinator=coordinator)
        also = ", the group's coordinator too" if coordinator == broker else f"; coordinator: broker {coordinator}"
        run.note(f"SIGKILL broker {broker} (leader of sensor-data partitions {parts}{also})")
        return {"fault": "broker_down", "broker": broker, "partitions": parts, "group_coordinator": coordinator}

    def heal(self, run: DrillRun) -> None:
        broker = run.state["broker"]
        run.state["leaders_during"] = leaders(run)
        began = time.monotonic()
        run.h.kafka.brokers[broker].start()
        run.h.kafka.wait_ready(timeout=120)
        run.h.marker("broker_up", broker=broker)
        run.note(f"broker {broker} restarted, in the metadata after {time.monotonic() - began:.0f}s")

    def bound(self, s: PlantSettings, fault: float) -> tuple[float, str]:
        # A killed broker that coordinated the group costs the members their session as well: they
        # revoke and rejoin once session.timeout.ms passed without an answer from a coordinator.
        bound = s.broker_session + s.session + s.heartbeat + s.metadata + 2 * s.interval + SLACK
        return bound, (f"broker session {s.broker_session:g}s (fenced, leaders move) + consumer session "
                       f"{s.session:g}s + heartbeat {s.heartbeat:g}s (when it coordinated the group) + metadata "
                       f"refresh {s.metadata:g}s + 2 readings ({2 * s.interval:g}s) + slack {SLACK:g}s")

    def more_figures(self, run: DrillRun, report: DrillReport) -> None:
        broker, parts = run.state["broker"], run.state["partitions"]
        during = run.state.get("leaders_during", {})
        report.add(DrillFigure.check("leaders moved off the killed broker", all(during.get(p) != broker for p in parts),
                                     str({p: during.get(p) for p in parts}), f"not broker {broker}",
                                     note=f"partitions {parts} were led by broker {broker}"))
        try:
            rejoined = run.h.wait_for(lambda: all(broker in isr for _, isr in partitions(run).values()), 120,
                                      f"broker {broker} back in every ISR")
        except DrillFailed:
            rejoined = None
        report.add(DrillFigure.check("killed broker back in every ISR", rejoined is not None,
                                     "yes" if rejoined is not None else "no", "yes",
                                     note="checked after the plant stopped"))


class ConsumerFailure(SensorDrill):
    name = "consumer-failure"
    description = ("SIGKILL one processor process; its partitions move to the others within the session timeout; "
                   "nothing lost, nothing stored twice")

    def fault(self, run: DrillRun) -> dict[str, Any]:
        name, parts = processor_with_partitions(run)
        pid = run.h.signal_child(name, signal.SIGKILL)
        run.state.update(instance=name, pid=pid, partitions=parts)
        run.h.marker("consumer_killed", instance=name, pid=pid, partitions=parts)
        run.note(f"SIGKILL {name} (pid {pid}, partitions {parts or 'unknown'})")
        return {"fault": "consumer_killed", "instance": name, "pid": pid, "partitions": parts}

    def heal(self, run: DrillRun) -> None:
        name, pid = run.state["instance"], run.state["pid"]
        try:  # the plant's parent restarts a killed child by itself
            run.h.wait_for(lambda: run.h.children().get(name) not in (None, pid), 60, f"{name} to be restarted")
            run.note(f"{name} restarted by forge run (pid {run.h.children().get(name)})")
        except DrillFailed as exc:
            run.note(f"{name} not restarted: {exc}")

    def bound(self, s: PlantSettings, fault: float) -> tuple[float, str]:
        bound = s.session + s.heartbeat + 2 * s.interval + SLACK
        return bound, (f"consumer session {s.session:g}s + heartbeat {s.heartbeat:g}s + 2 readings "
                       f"({2 * s.interval:g}s) + slack {SLACK:g}s")


class NetworkPartition(SensorDrill):
    name = "network-partition"
    description = ("SIGSTOP the broker leading most partitions and one processor (a hung host: sockets open, no "
                   "answer), then SIGCONT both")

    def fault(self, run: DrillRun) -> dict[str, Any]:
        broker, parts = busiest_broker(run, prefer=run.lag.coordinator() if run.lag else None)
        name, held = processor_with_partitions(run)
        run.h.kafka.freeze(broker)
        pid = run.h.signal_child(name, signal.SIGSTOP)
        run.state.update(broker=broker, instance=name, pid=pid)
        run.h.marker("broker_down", broker=broker, partitions=parts, how="SIGSTOP")
        run.h.marker("consumer_frozen", instance=name, pid=pid, partitions=held)
        run.note(f"SIGSTOP broker {broker} (leader of {parts}) and {name} (pid {pid}, partitions {held or 'unknown'})")
        return {"fault": "network_partition", "broker": broker, "instance": name, "partitions": sorted(set(parts) |
                                                                                                       set(held))}

    def heal(self, run: DrillRun) -> None:
        run.h.kafka.thaw(run.state["broker"])
        run.h.signal_child(run.state["instance"], signal.SIGCONT)
        run.h.marker("broker_up", broker=run.state["broker"])
        run.note(f"SIGCONT broker {run.state['broker']} and {run.state['instance']}")

    def bound(self, s: PlantSettings, fault: float) -> tuple[float, str]:
        # Two paths, the slower one counts. The group: the frozen broker is fenced after the broker session;
        # it coordinated the group (the drill prefers that broker), so the members wait out their session
        # before they rejoin elsewhere, and the frozen processor leaves in the same rebalance. The partition
        # it led: the idempotent producer's requests in flight to a hung broker are neither answered nor
        # abandoned, so that partition's readings wait for the thaw or the producer's request timeout.
        group = s.broker_session + s.session + s.heartbeat
        producer = min(fault, s.request_timeout)
        bound = max(group, producer) + s.metadata + 2 * s.interval + SLACK
        return bound, (f"max(broker session {s.broker_session:g}s + consumer session {s.session:g}s + heartbeat "
                       f"{s.heartbeat:g}s: the group moves; min(fault {fault:g}s, request timeout "
                       f"{s.request_timeout:g}s): the frozen leader's in-flight produce requests) + metadata refresh "
                       f"{s.metadata:g}s + 2 readings ({2 * s.interval:g}s) + slack {SLACK:g}s")


class HighLoad(SensorDrill):
    name = "high-load"
    description = ("every sensor reads 10x as often for the fault phase (the lag rises and drains); then, at 25x, "
                   "the processors are paused for a few seconds and the group's drain rate is its limit")
    phases = {"warmup": 10.0, "fault": 30.0, "pause": 5.0, "drain": 90.0}
    scale = 10.0
    #: during the pause: high enough for a backlog worth measuring, low enough for the plant's rules (above
    #: ~x25 the rate-of-change rule sees noise over 20 ms as a rate and raises alerts without an anomaly)
    burst = 25.0

    def fault(self, run: DrillRun) -> dict[str, Any]:
        run.command({"command": "scale", "scale": self.scale})
        return {"fault": "high_load", "scale": self.scale, "burst": self.burst}

    def heal(self, run: DrillRun) -> None:
        # The limit: freeze every processor (less than a session timeout, so none leaves the group) while
        # the sensors run at x25, then let the group drain what piled up as fast as it can.
        run.state["load_end"] = time.time()
        run.command({"command": "scale", "scale": self.burst})
        time.sleep(1.0)  # the sensors' current sleep ends at the old rate
        names = sorted(n for n in run.h.children() if n.startswith("processors"))
        for name in names:
            run.h.signal_child(name, signal.SIGSTOP)
        paused = time.time()
        run.note(f"SIGSTOP {', '.join(names)} for {run.phase('pause'):g}s at x{self.burst:g}")
        time.sleep(run.phase("pause"))
        for name in names:
            run.h.signal_child(name, signal.SIGCONT)
        run.state.update(paused=paused, resumed=time.time())
        run.note(f"SIGCONT {', '.join(names)}")
        time.sleep(3.0)
        run.command({"command": "scale", "scale": 1.0})

    def bound(self, s: PlantSettings, fault: float) -> tuple[float, str]:
        bound = s.interval + SLACK
        return bound, f"no outage: one reading ({s.interval:g}s) + slack {SLACK:g}s"

    def more_figures(self, run: DrillRun, report: DrillReport) -> None:
        s, began, ended = run.settings, run.fault_at + 1.0, run.state["load_end"]
        paused, resumed = run.state["paused"], run.state["resumed"]
        with run.h.db().connect() as conn:
            rows = conn.execute(sa.text("SELECT ts, stored_at FROM readings")).all()
        made = sorted(float(r.ts) for r in rows)
        kept = sorted(float(r.stored_at) for r in rows)

        def between(times: list[float], a: float, b: float) -> int:
            return bisect.bisect_left(times, b) - bisect.bisect_left(times, a)

        def backlog(t: float) -> int:
            return bisect.bisect_right(made, t) - bisect.bisect_right(kept, t)

        offered = between(made, began, ended) / (ended - began)
        kept_rate = between(kept, began, ended) / (ended - began)
        report.add(DrillFigure.info("offered load at x10", round(offered, 1), "readings/s",
                                    note=f"{s.sensors} sensors, one reading each {s.interval / self.scale:g}s"))
        report.add(DrillFigure.info("stored during the load", round(kept_rate, 1), "readings/s"))
        # The group's limit: its rate from the resume until the backlog of the pause is worked off
        # (back to the level it had before the pause), new readings included.
        # Judged at each stored reading's own time, not on a grid: on a fast machine the backlog of the
        # pause is gone in a fraction of a second (a 0.05 s grid left that unmeasured).
        piled, level = backlog(resumed), backlog(paused) + s.sensors
        after = kept[bisect.bisect_right(kept, resumed):bisect.bisect_right(kept, resumed + 120)]
        worked_off = next((stamp for stamp in after if backlog(stamp) <= level), None)
        took = (worked_off - resumed) if worked_off is not None else 120.0
        stored = bisect.bisect_right(kept, worked_off) - bisect.bisect_right(kept, resumed) if worked_off else 0
        capacity = round(stored / took, 1) if worked_off is not None and took > 0 and stored >= 50 else None
        report.add(DrillFigure.info("backlog at the resume", piled, "readings",
                                    note=f"processors paused {resumed - paused:.1f}s at x{self.burst:g}"))
        note = (f"stored per second from the resume until the backlog was worked off ({took:.2f}s): the group's "
                f"limit on this machine, {capacity / (offered / self.scale):.0f}x the normal load"
                if capacity and offered else
                "not measured (fewer than 50 readings stored, or the backlog was not worked off)")
        report.add(DrillFigure.info("processing capacity", capacity, "readings/s", note=note))
        report.details["high_load"] = {"offered": offered, "stored": kept_rate, "piled": piled, "worked_off_in": took}
