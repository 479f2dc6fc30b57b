"""A machine's window: OEE and the six big losses from state changes and counter samples."""

from __future__ import annotations

import random

import pytest
from forge_opcua.settings import MachineTiming
from forge_opcua.simulator.model import Machine
from oee_line.oee import CounterSample, LossSettings, StateChange, machine_window
from oee_line.oee.shifts import Shift, shift_windows

MIN = 60.0


def test_the_literature_example_from_states_and_counters() -> None:
    # 480 min shift: a 40 min breakdown, a 20 min setup, 420 min running; 400 parts, 20 bad
    states = [StateChange(0, "running"), StateChange(100 * MIN, "down", 7), StateChange(140 * MIN, "setup"),
              StateChange(160 * MIN, "running")]
    counters = [CounterSample(0, 0, 0), CounterSample(99 * MIN, 100, 100), CounterSample(400 * MIN, 380, 400)]
    w = machine_window(states, counters, 1 * MIN, 0, 480 * MIN)
    assert round(w.figures.oee * 100, 1) == 79.2
    assert w.figures.availability == pytest.approx(0.875)
    assert w.losses.breakdowns == 40 * MIN
    assert w.losses.setup_adjustments == 20 * MIN
    assert w.losses.small_stops == 0
    assert w.losses.reduced_speed == pytest.approx(20 * MIN)
    assert (w.losses.startup_reject_count, w.losses.production_reject_count) == (0, 20)
    assert w.figures.planned_time == pytest.approx(w.figures.productive_time + w.losses.total())


def test_short_stops_are_small_stops_and_long_ones_breakdowns() -> None:
    states = [StateChange(0, "running"), StateChange(100, "idle"), StateChange(160, "running"),
              StateChange(1000, "down", 3), StateChange(1600, "running")]
    w = machine_window(states, [], 1.0, 0, 2000, settings=LossSettings(small_stop_threshold=300))
    assert w.losses.small_stops == 60
    assert w.losses.breakdowns == 600


def test_a_stop_is_classified_by_its_whole_length_across_the_window_edge() -> None:
    states = [StateChange(0, "running"), StateChange(900, "down", 1), StateChange(1500, "running")]
    w = machine_window(states, [], 1.0, 0, 1000, settings=LossSettings(small_stop_threshold=300))
    assert w.losses.breakdowns == 100  # 600 s stop, 100 s of it in the window
    assert w.losses.small_stops == 0


def test_rejects_just_after_setup_are_startup_rejects() -> None:
    states = [StateChange(0, "setup"), StateChange(600, "running")]
    counters = [CounterSample(0, 0, 0), CounterSample(700, 5, 10), CounterSample(2000, 100, 110)]
    w = machine_window(states, counters, 1.0, 0, 3000, settings=LossSettings(startup_window=300))
    assert (w.losses.startup_reject_count, w.losses.production_reject_count) == (5, 5)
    assert w.losses.startup_rejects == 5.0


def test_a_counter_reset_is_a_plc_restart_not_negative_parts() -> None:
    states = [StateChange(0, "running")]
    counters = [CounterSample(0, 0, 0), CounterSample(500, 400, 400), CounterSample(600, 10, 12),
                CounterSample(900, 300, 302)]
    w = machine_window(states, counters, 1.0, 0, 1000)
    assert (w.figures.total, w.figures.good) == (702, 700)
    assert w.losses.startup_reject_count == 2  # made right after the restart


def test_a_good_count_stored_before_its_total_counts_once_the_total_is_there() -> None:
    # GoodCount 10 -> 11 is stored, its part's TotalCount 10 -> 11 not yet (a separate message): no error
    running = [StateChange(0.0, "running")]
    early = machine_window(running, [CounterSample(0.0, 10, 10), CounterSample(5.0, 11, 10)], 1.0, 0.0, 60.0)
    assert (early.figures.total, early.figures.good) == (0, 0)
    assert (early.losses.production_reject_count, early.losses.startup_reject_count) == (0, 0)
    later = machine_window(running, [CounterSample(0.0, 10, 10), CounterSample(5.0, 11, 11)], 1.0, 0.0, 60.0)
    assert (later.figures.total, later.figures.good) == (1, 1)


def test_planned_stops_and_missing_data_are_not_planned_production_time() -> None:
    states = [StateChange(200, "running")]
    w = machine_window(states, [], 1.0, 0, 1000, planned_stops=[(500, 600)])
    assert w.planned_stop_time == 100
    assert w.no_data_time == 200
    assert w.figures.planned_time == 700
    assert w.figures.availability == 1.0


def test_an_unknown_state_is_refused_naming_machine_and_time() -> None:
    with pytest.raises(ValueError, match=r"machine 'M1': unknown state 'paused' at 5"):
        machine_window([StateChange(5, "paused")], [], 1.0, 0, 10, machine="M1")


def test_the_simulated_machine_agrees_with_its_ground_truth() -> None:
    # the plant's check in miniature: every transition and part of a day, as the PLC would report them
    timing = MachineTiming()
    m = Machine("M1", timing, 2.0, random.Random(7), 0.0)
    states, counters = [StateChange(0.0, m.state)], [CounterSample(0.0, 0, 0)]
    t = 0.0
    while t < 86_400:
        t += 0.25
        before = (m.state, m.total)
        m.advance(t)
        if m.state != before[0]:
            states.append(StateChange(m.state_since, m.state, m.fault_code))
        if m.total != before[1]:
            counters.append(CounterSample(m.last_part_at, m.good, m.total))
    w = machine_window(states, counters, 2.0, 0.0, t)
    truth = m.totals
    assert (w.figures.total, w.figures.good) == (truth.total, truth.good)
    assert w.figures.run_time == pytest.approx(truth.seconds["running"], abs=1e-6)
    assert w.figures.planned_time == pytest.approx(t)
    assert w.figures.planned_time == pytest.approx(w.figures.productive_time + w.losses.total(), abs=1e-6)


def test_shift_windows_cover_the_day_and_cross_midnight() -> None:
    shifts = [Shift.parse("early", "06:00", 8), Shift.parse("late", "14:00", 8), Shift.parse("night", "22:00", 8)]
    windows = list(shift_windows(shifts, 0.0, 86_400.0))
    assert [w.shift for w in windows] == ["night", "early", "late", "night"]
    assert sum(w.end - w.start for w in windows) == 86_400
    assert windows[0].day == -1 and windows[0].end == 6 * 3600
    with pytest.raises(ValueError, match="shift 'x': start '25:00'"):
        Shift.parse("x", "25:00", 8)


def test_after_restart_bisects_to_what_any_over_every_restart_says() -> None:
    from oee_line.oee.losses import _after_restart  # the startup-reject test of machine_window

    rng = random.Random(11)
    for _ in range(2000):
        restarts = sorted(rng.choice([rng.uniform(0, 100), float(rng.randrange(100)), rng.randrange(1000) / 10])
                          for _ in range(rng.randrange(6)))
        window = rng.choice([0.0, 0.1, 5.0, 30.0, rng.uniform(0, 40)])
        ts = rng.choice([*restarts, *(r + window for r in restarts), rng.uniform(-5, 140)])
        assert _after_restart(restarts, ts, window) == any(r <= ts < r + window for r in restarts)
