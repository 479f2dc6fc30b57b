"""The drill's figures from what it left (the merged summary, every child's own summary, PostgreSQL, the
wiretap), what is wrong with each, and the printed report."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pasta_drill_attackers import FORGED_EPOCH
from pasta_drill_run import Drill

#: the pasta plant's whole-plant checks over the merged summary (forge_plant_checks)
PLANT_CHECKS = ("fleet: no command applied with an epoch no leader held",
                "every bladed heartbeat sent is two batches in the database",
                "every command a leader sent reached its machine, and none other")


def child_summaries(logs: Path) -> dict[str, list[dict[str, Any]]]:
    """Every clean life's own ``--json`` summary, by instance."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(logs.glob("*.json")):
        name = path.stem.rsplit(".", 1)[0]
        text = path.read_text()
        if "{" in text:
            with contextlib.suppress(ValueError):
                out.setdefault(name, []).append(json.loads(text[text.find("{"):]))
    return out


def match_productions(beats: list[tuple[float, int, str]], rows: list[Any]) -> tuple[list[Any], list[Any]]:
    """Pair each production (the two batches of one transaction: one production_date) with the earliest
    unpaired bladed beat of its blade delivered before it. Returns (productions without a beat: duplicated
    effects, beats without a production: lost), as (time, blade)."""
    productions: dict[float, list[str]] = {}
    for row in rows:
        productions.setdefault(row.production_date.timestamp(), []).append(row.blade_type)
    waiting = sorted(beats)
    extra = []
    for at, blades in sorted(productions.items()):
        for _ in range(len(blades) // 2):
            index = next((i for i, (t, _, b) in enumerate(waiting) if b == blades[0] and t <= at + 0.5), None)
            if index is None:
                extra.append((at, blades[0]))
            else:
                waiting.pop(index)
    return extra, [(t, b) for t, _, b in waiting]


def measure(d: Drill) -> None:
    """The drill's figures (into ``d.figures``) and what is wrong with each (``d.problems``)."""
    summary, tap, figures, rel = d.summary, d.tap, d.figures, d.timeline.t0_wall
    problems: dict[str, list[str]] = {k: [] for k in ("checks", "processes", "heartbeats", "forgery", "status",
                                                      "dead letters")}
    # every check passed, the plant's whole-plant checks among them
    checks = summary["checks"]
    failed = [c for c in checks if not c["passed"]]
    names = {c["name"] for c in checks}
    figures["checks"] = {"total": len(checks), "failed": len(failed), "not run (killed)": summary.get("checks_not_run"),
                         "whole-plant checks": sorted(n for n in names if n in PLANT_CHECKS)}
    problems["checks"] += [f"failed: {c['component']}: {c['name']}: {c['detail']}" for c in failed]
    problems["checks"] += [f"missing: {n}" for n in PLANT_CHECKS if n not in names]

    # every process kind died once by SIGKILL and came back; forge run ended cleanly
    procs = summary["extra"]["processes"]
    figures["processes"] = {n: {"lives": p["lives"], "exit codes": p["exit_codes"]} for n, p in procs.items()}
    for name in d.killed_at:
        if -9 not in procs[name]["exit_codes"] or procs[name]["lives"] < 2:
            problems["processes"].append(f"{name} was not killed and restarted: {procs[name]}")
    if d.exit_code != 0:
        problems["processes"].append(f"forge run exited {d.exit_code}")

    # lost / duplicated: bladed heartbeats the broker delivered vs batches in PostgreSQL. The last beats
    # may still be on their way at SIGINT, so both are counted up to a quiet moment 20 s before the end.
    beats = sorted(tap.beats())
    times = [t for t, _, _ in beats]
    cut = d.stopping_at - 20
    for i in range(len(times) - 1, -1, -1):  # the last beat before that, followed by 1 s of silence
        if times[i] < d.stopping_at - 20 and (i + 1 == len(times) or times[i + 1] - times[i] > 1.0):
            cut = times[i] + 0.2
            break
    on_wire = [b for b in beats if b[0] <= cut]
    engine = sa.create_engine(d.url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, blade_type, production_date FROM batches "
                                    "WHERE production_date > :seed"), {"seed": datetime(2024, 1, 2, tzinfo=UTC)}).all()
        dup_ids = conn.execute(sa.text("SELECT count(*) - count(DISTINCT id) FROM batches")).scalar()
    engine.dispose()
    batches = [r for r in rows if r.production_date.timestamp() <= cut + 0.8]
    extra, missing = match_productions(on_wire, batches)
    figures["heartbeats"] = {"bladed beats delivered by the broker": len(on_wire), "batches in PostgreSQL":
                             len(batches), "expected (2 per beat)": 2 * len(on_wire),
                             "lost (beats without batches)": len(missing),
                             "duplicated (productions without a beat)": len(extra), "batch ids twice": dup_ids,
                             "counted until (s before the end)": round(d.stopping_at - cut, 1)}
    if extra or missing or dup_ids or len(batches) != 2 * len(on_wire):
        problems["heartbeats"].append(
            f"{figures['heartbeats']}; productions without a beat at {[(round(t - rel, 1), b) for t, b in extra]}, "
            f"beats without batches at {[(round(t - rel, 1), b) for t, b in missing]} (s since the drill began; "
            f"kills at { {n: round(t - rel, 1) for n, t in d.killed_at.items()} })")

    # forged commands: refused by the broker, or dropped by the machine. Obeyed = a machine confirms a
    # swap to the forged blade within 6 s of the forgery that no genuine command (from 10 s before) asked for.
    genuine = [(t, b) for t, b in tap.on("productionPlan/swapBlade") + tap.on("productionPlan/assignBlade")
               if isinstance(b, dict) and b.get("epoch") != FORGED_EPOCH]
    swapped = [(t, b) for t, b in tap.on("productionPlan/bladeSwapped") if d.forged_at <= t <= d.forged_at + 6]
    obeyed = [b for t, b in swapped if not any(
        d.forged_at - 10 <= tg <= t and g.get("machineId") == b.get("machineId") and g.get("bladeType") ==
        b.get("bladeType") for tg, g in genuine)]
    reports = summary["reports"]
    lives = child_summaries(d.logs)
    dropped = {n: sum(int(life.get("reports", {}).get(n, {}).get("forged_dropped", 0)) for life in lives.get(n, []))
               for n in ("machine-0", "machine-1", "machine-2")}
    figures["forgery"] = {"attackers": figures.pop("forgers"), "obeyed": len(obeyed),
                          "forged commands dropped by machines (every life)": dropped,
                          "stale_rejected by machines": {n: reports.get(n, {}).get("stale_rejected")
                                                         for n in dropped},
                          "genuine commands on the wire after the forgery":
                              sum(1 for t, _ in genuine if t > d.forged_at)}
    if obeyed:
        problems["forgery"].append(f"forged commands obeyed: {obeyed}")
    attackers = figures["forgery"]["attackers"]
    if attackers["anonymous"]["published"] or attackers["anonymous"]["connack"] == "Success":
        problems["forgery"].append(f"the broker let an anonymous client in: {attackers['anonymous']}")
    if attackers["machine role"]["accepted"] or attackers["machine role"]["refused"] != 6:
        problems["forgery"].append(f"the broker took commands from the machine role: {attackers['machine role']}")
    forged_delivered = attackers["bridge role, no key"]["accepted"]
    # each of the 6 reaches all three machines; a machine that was running drops every one
    if sum(dropped.values()) < forged_delivered:
        problems["forgery"].append(f"the machines dropped {sum(dropped.values())} of the {forged_delivered} "
                                   f"commands forged with the bridge's password: {dropped}")

    # no false DOWN: a DOWN for a machine that was not killed, or for the killed one outside its death
    downs = [(t, b) for n in range(3) for t, b in tap.on(f"forge/status/{n}")
             if isinstance(b, dict) and b.get("status") == "DOWN"]
    machine_kills = {n.removeprefix("machine-"): t for n, t in d.killed_at.items() if n.startswith("machine-")}
    false_down = [(round(t - rel, 1), b.get("source"), b.get("reason")) for t, b in downs if t < d.stopping_at
                  and not (b.get("source") in machine_kills and 0 <= t - machine_kills[b["source"]] <= 30)]
    figures["status"] = {"DOWN on the wire before the stop": sum(1 for t, _ in downs if t < d.stopping_at),
                         "false DOWN (s since the drill began, machine, reason)": false_down}
    if false_down:
        problems["status"].append(f"false DOWN: {false_down}")

    # dead letters: every one of the flood counted where it went (recorded, dropped, quarantined), by each
    # process that reads `heartbeats` on MQTT; no dead letter of any other kind
    letters: dict[str, Counter[str]] = {}
    for name, runs in lives.items():
        for life in runs:
            acc = (life.get("extra") or {}).get("dead_letters") or {}
            if not acc.get("total"):
                continue
            entry = letters.setdefault(name, Counter())
            for key in ("total", "offered", "quarantined", "recorded", "dropped", "pending"):
                entry[key] += int(acc.get(key, 0))
            if acc["total"] != acc["offered"] + acc["quarantined"] or acc["offered"] != (
                    acc.get("recorded", 0) + acc.get("dropped", 0) + acc.get("pending", 0)):
                problems["dead letters"].append(f"{name}'s dead letters do not add up: {acc}")
    by_reason = summary["dead_letters"]
    figures["dead letters"] = {"by process": {n: dict(c) for n, c in letters.items()}, "by reason": by_reason}
    sent = figures["flood"]["acked"]
    for receiver in ("bridge", "machine_health"):
        got = letters.get(receiver, Counter())["total"]
        if got != sent:
            problems["dead letters"].append(f"{receiver} counted {got} dead letters for {sent} malformed messages")
    others = {r: n for r, n in by_reason.items() if r not in ("decode_error", "invalid")}
    if others:
        problems["dead letters"].append(f"dead letters that are not the flood's: {others} (see the logs)")
    d.problems = problems
    figures["log lines (all processes)"] = sum(
        len(p.read_bytes().splitlines()) for p in d.logs.glob("*.log"))


def print_report(d: Drill) -> None:
    print("\n=== fault drill report (issue 11): distributed pasta plant ===")
    for at, what in d.timeline.events:
        print(f"  {at:7.1f}s  {what}")
    for key, value in d.figures.items():
        print(f"  {key}: {json.dumps(value, default=str)}")
    for key, found in d.problems.items():
        print(f"  {key}: {'as promised' if not found else 'FAILED: ' + '; '.join(found)}")
    print(f"  logs: {d.logs}", flush=True)
