"""The whole-plant counting checks (issue 11 §5): machines' odometers against the database and
the leaders' terms, from the merged summary; numbers in the detail; odometers survive a new life."""

from __future__ import annotations

from pasta_plant.count_checks import count_checks
from pasta_plant.odometer import Odometer, read

from forge_core.runtime import RunSummary


def _summary(bladed: list[int], in_db: int, *, terms=(), received=None, processes=False,
             per_heartbeat=None) -> RunSummary:
    reports = {f"machine-{i}": {"odometer": {"counts": {"beats": n + 1, "bladed_beats": n,
                                                        **(received or {}).get(i, {})},
                                             "times": {"bladed_beats": [100.0]}}}
               for i, n in enumerate(bladed)}
    per = per_heartbeat or {"heartbeats": in_db // 2, "duplicated": 0, "extra_batches": 0, "examples": {},
                            "untracked_batches": 0}
    reports["production"] = {"run_batches_in_database": in_db, "stopped_at": 200.0, "run_per_heartbeat": per}
    reports["scheduler-0"] = {"terms": list(terms)}
    summary = RunSummary(plant="pasta_plant", profile=None, clock="real", seed=None, duration=1.0,
                         wall_seconds=1.0, reports=reports)
    if processes:
        summary.extra["processes"] = {}
    return summary


def _by_name(checks):
    return {c.name.split()[1] if c.name.split()[1] != "most" else "one": c for c in checks}


def test_missing_batches_fail_with_the_numbers():
    checks = _by_name(count_checks(_summary([31, 31], 116)))
    assert not checks["bladed"].passed
    assert "116 batches in the database for 62 bladed heartbeats" in checks["bladed"].detail
    assert "4 heartbeat(s) missing (8 batches)" in checks["bladed"].detail
    assert _by_name(count_checks(_summary([31, 31], 124)))["bladed"].passed
    # more heartbeat ids than beats counted (an earlier run's queued beats) is allowed
    assert _by_name(count_checks(_summary([31, 31], 130)))["bladed"].passed


def test_a_heartbeat_id_with_more_than_two_batches_is_a_duplicated_effect():
    """The drill's finding: 126 batches for 62 beats passed as "more is allowed" although one
    heartbeat had been produced twice (Kafka redelivery). Counted per heartbeat id, it fails."""
    per = {"heartbeats": 62, "duplicated": 1, "extra_batches": 2, "examples": {"abc-7": 4}, "untracked_batches": 0}
    check = _by_name(count_checks(_summary([31, 31], 126, per_heartbeat=per)))["bladed"]
    assert not check.passed
    assert "62 heartbeat id(s), 1 with more than two batches (2 extra batch(es)" in check.detail
    assert "abc-7 x4" in check.detail
    untracked = {"heartbeats": 62, "duplicated": 0, "extra_batches": 0, "examples": {}, "untracked_batches": 2}
    assert not _by_name(count_checks(_summary([31, 31], 126, per_heartbeat=untracked)))["bladed"].passed
    summary = _summary([31, 31], 124)
    del summary.reports["production"]["run_per_heartbeat"]
    check = _by_name(count_checks(summary))["bladed"]
    assert not check.passed and "per heartbeat id" in check.detail


def test_no_production_report_is_not_a_pass():
    summary = _summary([3], 6)
    del summary.reports["production"]
    check = _by_name(count_checks(summary))["bladed"]
    assert not check.passed and "not counted" in check.detail


def test_commands_sent_against_received_by_epoch():
    terms = [{"epoch": 7, "from": 1.0, "to": 9.0, "sent": 3}]
    ok = _summary([1], 2, terms=terms, received={0: {"received:7": 3}}, processes=True)
    assert _by_name(count_checks(ok))["command"].passed
    lost = _summary([1], 2, terms=terms, received={0: {"received:7": 2}}, processes=True)
    check = _by_name(count_checks(lost))["command"]
    assert not check.passed and "(7, 3, 2)" in check.detail
    forged = _summary([1], 2, terms=terms, received={0: {"received:7": 4}})
    assert not _by_name(count_checks(forged))["command"].passed  # more received than sent, in any profile
    unknown = _summary([1], 2, terms=terms, received={0: {"received:7": 3, "received:5": 2}}, processes=True)
    check = _by_name(count_checks(unknown))["command"]
    assert check.passed and "2 received in 1 epoch(s) 5" in check.detail


def test_an_odometer_survives_a_new_life_of_the_same_run_only(tmp_path):
    path = tmp_path / "odo.json"
    first = Odometer(path, "run-1")
    first.add("beats", "bladed_beats", at=5.0)
    first.add("beats")  # then SIGKILL: nothing else is written
    second = Odometer(path, "run-1")
    assert second["beats"] == 2 and second["bladed_beats"] == 1 and second.lives == 2
    assert read(path, "run-1")["times"]["bladed_beats"] == [5.0]
    assert Odometer(path, "run-2")["beats"] == 0  # another run starts over


def test_leadership_is_judged_by_terms_not_by_flags():
    def summary(terms0, terms1):
        s = _summary([1], 2)
        s.reports["scheduler-0"] = {"leading": True, "terms": terms0}
        s.reports["scheduler-1"] = {"leading": True, "terms": terms1}
        return s

    in_turn = summary([{"epoch": 4, "from": 0.0, "to": 60.0, "sent": 3}],
                      [{"epoch": 5, "from": 60.9, "to": None, "sent": 0}])
    check = _by_name(count_checks(in_turn))["one"]
    assert check.passed and "epochs [4, 5]" in check.detail
    split = summary([{"epoch": 4, "from": 0.0, "to": None, "sent": 3}],
                    [{"epoch": 5, "from": 30.0, "to": None, "sent": 1}])
    check = _by_name(count_checks(split))["one"]
    assert not check.passed and "overlapping" in check.detail
    # CI, stop 23: the leader's term still open at its report (taken before the stop released the lease),
    # the standby elected after the release: not an overlap. Leading at its report after the standby's
    # start is one.
    released = summary([{"epoch": 4, "from": 0.0, "to": None, "sent": 3, "leading_at": 60.0}],
                       [{"epoch": 5, "from": 60.9, "to": None, "sent": 0, "leading_at": 62.0}])
    assert _by_name(count_checks(released))["one"].passed
    still = summary([{"epoch": 4, "from": 0.0, "to": None, "sent": 3, "leading_at": 61.0}],
                    [{"epoch": 5, "from": 60.9, "to": None, "sent": 0, "leading_at": 62.0}])
    check = _by_name(count_checks(still))["one"]
    assert not check.passed and "('scheduler-0', 4, 'scheduler-1', 5)" in check.detail


def test_an_epoch_resumed_by_a_revived_leader_counts_only_a_shortfall():
    """The fault drill: scheduler-0 led epoch 1, was SIGKILLed after sending 5 commands, was revived
    and re-acquired its own unexpired lease, keeping epoch 1; its new life reported epoch 1 with 0
    sent while the machines had received 5. Not a forgery: the killed life's count died with it."""
    terms = [{"epoch": 1, "from": 1.0, "to": 9.0, "sent": 0}]
    resumed = _summary([1], 2, terms=terms, received={0: {"received:1": 5}}, processes=True)
    resumed.extra["processes"] = {"scheduler-0": {"exit_codes": [-9, 0], "log": "/nonexistent/scheduler-0.log"}}
    check = _by_name(count_checks(resumed))["command"]
    assert check.passed and "resumed by a revived leader" in check.detail
    never_killed = _summary([1], 2, terms=terms, received={0: {"received:1": 5}}, processes=True)
    never_killed.extra["processes"] = {"scheduler-0": {"exit_codes": [0], "log": "/nonexistent/scheduler-0.log"}}
    assert not _by_name(count_checks(never_killed))["command"].passed  # received unsent commands
    short = _summary([1], 2, terms=[{"epoch": 1, "from": 1.0, "to": 9.0, "sent": 4}],
                     received={0: {"received:1": 3}}, processes=True)
    short.extra["processes"] = {"scheduler-0": {"exit_codes": [-9, 0], "log": "/nonexistent/scheduler-0.log"}}
    assert not _by_name(count_checks(short))["command"].passed  # what the new life sent must all arrive
