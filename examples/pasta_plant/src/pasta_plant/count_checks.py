"""Whole-plant checks that count from both ends: what the machines sent against what PostgreSQL
recorded, commands the schedulers sent against commands the machines received.

Run once per plant run over the merged summary (``forge_plant_checks``), so they see every
process's report, not one process's view of itself.

Where the numbers come from, and why they survive kills:

* **Machines** count on their odometer (:mod:`pasta_plant.odometer`): a heartbeat once
  ``ctx.publish`` returned (handed to the MQTT transport: in flight under QoS 1, or in its
  durable outbox), a command by its epoch on first delivery. In the distributed profile the
  odometer is a file in the instance's data dir, rewritten on every count, so a SIGKILLed life's
  counts are still there: this module reads the files of every instance of the run (the parent's
  pid and start time name the run) and falls back to the machines' reports (one-process plant).
* **Batches** are counted by PostgreSQL: production's last life reads ``count(*)`` of the rows
  from the run's first batch id (kept on its odometer across its lives) at stop
  (``run_batches_in_database``). It is production that reads because it holds the connection
  and the run's first id; the parent has neither (only the merged summary). Not production's
  in-memory count.
* **Commands sent** come from the schedulers' reported terms (epoch, from, to, machine commands
  sent). A leader SIGKILLed in its term reports nothing: its epoch is listed as not compared,
  never silently counted as fine.

* **Duplicated effects** are counted by PostgreSQL too, per source heartbeat: every batch records
  the envelope id of the heartbeat it was made for (``heartbeat_id``), and production's last life
  reports, over the run's batches, how many heartbeat ids there are and which have more than their
  two batches (``run_per_heartbeat``). Any such id fails the check with the numbers: a redelivery
  (Kafka after a kill or a session timeout) must have no second effect.

Bounds: a heartbeat counted when ``publish`` returned may still be lost if the machine is
SIGKILLed before the broker's PUBACK (paho holds it in memory): at most the in-flight beats at the
kill (one at 5 s beats). One that reached the broker but whose count was not written before a
SIGKILL makes the database count *higher*, as does a previous run's beat queued in the persistent
session, and so would a beat the bridge forwarded twice (MQTT redelivery to a restarted bridge
gives it a new envelope id: plain machines send none). So the count of heartbeats is one-sided:
``heartbeat ids in the database >= bladed beats``, less the beats sent in the last
:data:`IN_FLIGHT` seconds before production stopped (every process stops at once; those are in
flight, and the persistent session hands them to the next run); while no heartbeat id may have
more than two batches.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_core import Check
from pasta_plant.odometer import FILE, read, run_id

if TYPE_CHECKING:
    from forge_core.runtime import RunSummary

#: seconds a heartbeat may take from the machine through MQTT, the bridge and Kafka into production
IN_FLIGHT = 2.0


def odometers(summary: RunSummary) -> dict[str, dict[str, Any]]:
    """Every instance's odometer of this run: the files of a multi-process run (killed lives
    included), else what the reports carry."""
    found = {name: r["odometer"] for name, r in summary.reports.items()
             if isinstance(r, dict) and isinstance(r.get("odometer"), dict)}
    production = summary.reports.get("production")
    if isinstance(production, dict):  # one process: the ledger's, killed instances' included
        found.update(production.get("ledger_odometers") or {})
    processes = summary.extra.get("processes") or {}
    run = run_id(os.getpid())
    for name, proc in processes.items():
        saved = read(Path(proc["log"]).parent / name / FILE, run)
        if saved is not None:
            found[name] = saved
    return found


def count_checks(summary: RunSummary) -> list[Check]:
    meters = odometers(summary)
    machines = {n: m for n, m in meters.items() if "beats" in m["counts"]}
    return [_batches_check(summary, machines), _commands_check(summary, machines), leadership_check(summary)]


def leadership_check(summary: RunSummary) -> Check:
    """At most one scheduler led at any moment: the reported terms have distinct epochs and do not
    overlap. Not the reports' ``leading`` flags: each process reports at its own SIGTERM, so the
    leader (which then releases the lease) and the standby elected a moment later both say True.
    A term still open at its report is judged up to the report (``leading_at``): it went on until
    the release that followed, before which no standby could be granted the lease (CI, stop 23: the
    leader's open term, read as endless, 'overlapped' the standby elected after its release)."""
    terms = sorted(((float(t["from"]), _end(t), int(t["epoch"]), name)
                    for name, r in summary.reports.items() if isinstance(r, dict)
                    for t in r.get("terms") or []), key=lambda t: (t[0], t[2]))
    epochs = [t[2] for t in terms]
    overlaps = [(a[3], a[2], b[3], b[2]) for a, b in itertools.pairwise(terms) if b[0] < a[1]]
    both = sorted(n for n, r in summary.reports.items() if isinstance(r, dict) and "terms" in r and r.get("leading"))
    detail = f"{len(terms)} term(s), epochs {epochs}"
    if both:
        detail += f"; reported leading at their own stop: {', '.join(both)}"
    if len(set(epochs)) != len(epochs):
        detail += "; an epoch held twice"
    if overlaps:
        detail += "; overlapping (holder, epoch, holder, epoch): " + ", ".join(map(str, overlaps))
    return Check("at most one scheduler led at any moment", not overlaps and len(set(epochs)) == len(epochs), detail)


def _end(term: dict[str, Any]) -> float:
    """A term's end, or the moment it was last known to lead (an open term); endless if neither."""
    for key in ("to", "leading_at"):
        if term.get(key) is not None:
            return float(term[key])
    return float("inf")


def _batches_check(summary: RunSummary, machines: dict[str, dict[str, Any]]) -> Check:
    name = "every bladed heartbeat sent is two batches in the database"
    production = summary.reports.get("production")
    if not machines:
        return Check(name, False, "not counted: no machine's counts found")
    if not isinstance(production, dict) or "run_batches_in_database" not in production:
        return Check(name, False, "not counted: production wrote no report (its last life did not stop cleanly)")
    bladed = sum(m["counts"].get("bladed_beats", 0) for m in machines.values())
    stopped = float(production["stopped_at"])
    tail = sum(1 for m in machines.values() for t in m.get("times", {}).get("bladed_beats", [])
               if t >= stopped - IN_FLIGHT)
    per = production.get("run_per_heartbeat")
    if not isinstance(per, dict):
        return Check(name, False, "not counted: production did not report its batches per heartbeat id")
    found, expected = int(production["run_batches_in_database"]), 2 * bladed
    heartbeats, duplicated, extra = int(per["heartbeats"]), int(per["duplicated"]), int(per["extra_batches"])
    untracked = int(per["untracked_batches"])
    missing = max(0, bladed - heartbeats)
    detail = (f"{found} batches in the database for {bladed} bladed heartbeats from {len(machines)} machines "
              f"({expected} expected; {tail} beat(s) sent within {IN_FLIGHT:g}s of production's stop may be in "
              f"flight); {heartbeats} heartbeat id(s), {duplicated} with more than two batches")
    if duplicated:
        detail += (f" ({extra} extra batch(es): duplicated effects, e.g. "
                   f"{', '.join(f'{k} x{n}' for k, n in (per.get('examples') or {}).items())})")
    skipped = production.get("run_redeliveries_skipped")
    if skipped:
        detail += f"; {skipped} redelivery(ies) skipped by production"
    if untracked:
        detail += f"; {untracked} batch(es) name no heartbeat (not countable)"
    if heartbeats > bladed:
        detail += (f"; {heartbeats - bladed} heartbeat id(s) more than beats counted (an earlier run's queued "
                   f"beats, a count lost to a SIGKILL, or a beat the bridge forwarded twice)")
    if missing > tail:
        detail += f"; {missing} heartbeat(s) missing ({2 * missing} batches)"
    return Check(name, missing <= tail and not duplicated and not untracked, detail)


def _commands_check(summary: RunSummary, machines: dict[str, dict[str, Any]]) -> Check:
    name = "every command a leader sent reached its machine, and none other"
    sent: dict[int, int] = {}
    # A scheduler revived after a SIGKILL re-acquires its own unexpired lease and keeps its epoch
    # (LeaderElector: same holder, same term), so its report's count for that epoch misses what the
    # killed life sent: for such epochs only fewer received than reported sent is a loss.
    processes = summary.extra.get("processes") or {}
    partial: set[int] = set()
    for instance, report in summary.reports.items():
        killed = -9 in (processes.get(instance) or {}).get("exit_codes", []) or summary.restarts.get(instance)
        for term in (report.get("terms") or []) if isinstance(report, dict) else []:
            sent[int(term["epoch"])] = sent.get(int(term["epoch"]), 0) + int(term["sent"])
            if killed:
                partial.add(int(term["epoch"]))
    received: dict[int, int] = {}
    for m in machines.values():
        for key, n in m["counts"].items():
            if key.startswith("received:"):
                epoch = int(key.split(":", 1)[1])
                received[epoch] = received.get(epoch, 0) + int(n)
    compared = sorted(sent)
    # one process (memory bus): a command to an instance killed at that moment is lost with it, so
    # only "received more than sent" fails; processes (persistent MQTT sessions) must deliver every one
    strict = "processes" in summary.extra
    bad = [(e, sent[e], received.get(e, 0)) for e in compared
           if (received.get(e, 0) > sent[e] and e not in partial)
           or (strict and received.get(e, 0) < sent[e])
           or (strict and e not in partial and received.get(e, 0) != sent[e])]
    lost = sum(max(0, sent[e] - received.get(e, 0)) for e in compared)
    unknown = {e: n for e, n in sorted(received.items()) if e not in sent}
    detail = (f"epochs {compared}: {sum(sent.values())} sent, {sum(received.get(e, 0) for e in compared)} received"
              if compared else "no leader's term reported")
    if lost and not strict:
        detail += f"; {lost} not received (sent to a killed instance: lost with it on the memory bus)"
    if bad:
        detail += "; differ (epoch, sent, received): " + ", ".join(map(str, bad))
    if partial:
        detail += (f"; epochs {sorted(partial)} resumed by a revived leader: its killed life's commands are not in "
                   "the report, so only a shortfall counts there")
    if unknown:
        detail += (f"; not compared (no report of their term: leader killed, or an earlier run): "
                   f"{sum(unknown.values())} received in {len(unknown)} epoch(s) {_span(unknown)}")
    return Check(name, not bad, detail)


def _span(epochs: dict[int, int]) -> str:
    first, last = min(epochs), max(epochs)
    return str(first) if first == last else f"{first}..{last}"
