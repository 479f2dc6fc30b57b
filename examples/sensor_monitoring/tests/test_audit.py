"""The plant checks' arithmetic (sensor_monitoring.audit) on hand-made tables: what is lost, in flight,
alerted, missed, unexplained, left raised."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sensor_monitoring.audit import audit, reported_lives, tolerances
from sensor_monitoring.lives import SEQ_SPAN

from forge_core.runtime import RunSummary

T0 = 1_800_000_000.0
DDL = ["CREATE TABLE readings (sensor_id TEXT, seq BIGINT, ts FLOAT, anomaly TEXT, PRIMARY KEY (sensor_id, seq))",
       "CREATE TABLE alerts (alert_id TEXT PRIMARY KEY, sensor_id TEXT, rule TEXT, severity TEXT, state TEXT, "
       "reading_seq BIGINT)"]


@pytest.fixture
def conn():
    engine = sa.create_engine("sqlite://")
    with engine.begin() as c:
        for statement in DDL:
            c.execute(sa.text(statement))
        yield c
    engine.dispose()


def store(conn, sensor_id, seqs, anomaly=None, epoch=0):
    for n in seqs:
        conn.execute(sa.text("INSERT INTO readings VALUES (:s, :q, :t, :a)"),
                     {"s": sensor_id, "q": epoch * SEQ_SPAN + n, "t": T0 + n, "a": anomaly})


def label(conn, sensor_id, seqs, anomaly):
    for n in seqs:
        conn.execute(sa.text("UPDATE readings SET anomaly = :a WHERE sensor_id = :s AND seq = :q"),
                     {"s": sensor_id, "q": n, "a": anomaly})


def alert(conn, sensor_id, rule, seq, state="cleared", severity="critical"):
    conn.execute(sa.text("INSERT INTO alerts VALUES (:i, :s, :r, :v, :st, :q)"),
                 {"i": f"{sensor_id}:{rule}:{seq}", "s": sensor_id, "r": rule, "v": severity, "st": state, "q": seq})


def life(produced, epoch=0, recent_from=None):
    return {"epoch": epoch, "first_seq": epoch * SEQ_SPAN + 1, "last_seq": epoch * SEQ_SPAN + produced,
            "produced": produced, "recent_from": recent_from}


def test_every_produced_reading_stored_passes(conn):
    store(conn, "temp-1", range(1, 101))
    result = audit(conn, {"temp-1": [life(100)]}, settle=30)
    assert (result.produced, result.stored, result.lost, result.duplicates) == (100, 100, {}, 0)
    assert all(check.passed for check in result.checks())


def test_a_missing_reading_is_lost_unless_it_was_in_flight_at_the_end(conn):
    store(conn, "temp-1", [*range(1, 50), *range(51, 99)])
    result = audit(conn, {"temp-1": [life(100, recent_from=98)]}, settle=30)
    assert result.lost == {"temp-1": [50]} and result.in_flight == 2
    stored = result.checks()[0]
    assert not stored.passed and "1 lost" in stored.detail and "temp-1: 50" in stored.detail


def test_readings_above_the_reported_last_seq_were_published_after_the_report(conn):
    store(conn, "vib-1", range(1, 13))
    result = audit(conn, {"vib-1": [life(10)]}, settle=30)
    assert result.after_report == 2 and result.stored == 10 and result.checks()[0].passed


def test_each_life_is_compared_in_its_own_epoch(conn):
    store(conn, "energy-1", range(1, 11))
    store(conn, "energy-1", range(1, 6), epoch=1)
    result = audit(conn, {"energy-1": [life(10), life(6, epoch=1)]}, settle=30)
    assert result.lives == 2 and result.lost == {"energy-1": [SEQ_SPAN + 6]}


def test_anomalies_alerted_missed_and_open_at_the_end(conn):
    store(conn, "temp-1", range(1, 401))
    label(conn, "temp-1", range(100, 105), "spike")   # alerted at 101
    label(conn, "temp-1", range(200, 260), "drift")   # alerted at 290: within settle 30 s of its end (259)
    label(conn, "temp-1", range(300, 330), "stuck")   # never alerted: missed
    label(conn, "temp-1", range(390, 396), "burst")   # ends at 395, settle reaches past the last reading (400)
    alert(conn, "temp-1", "temperature", 101)
    alert(conn, "temp-1", "temperature", 288)
    result = audit(conn, {"temp-1": [life(400)]}, settle=30)
    assert [e.anomaly for e in result.episodes] == ["spike", "drift", "stuck", "burst"]
    assert [e.anomaly for e in result.alerted] == ["spike", "drift"]
    assert [e.anomaly for e in result.missed] == ["stuck"] and [e.anomaly for e in result.open_at_end] == ["burst"]
    check = result.checks()[1]
    assert not check.passed and "temp-1 stuck seq 300..329" in check.detail
    assert result.figures()["by_anomaly"]["spike"] == {"injected": 1, "alerted": 1}


def test_an_alert_outside_every_anomaly_window_is_unexplained(conn):
    store(conn, "vib-2", range(1, 201))
    label(conn, "vib-2", range(50, 55), "spike")
    alert(conn, "vib-2", "vibration_rms", 52)
    alert(conn, "vib-2", "vibration_rms", 80)     # 25 s after the spike's end: settle 30 covers it
    alert(conn, "vib-2", "stuck", 150)            # nothing injected near it
    result = audit(conn, {"vib-2": [life(200)]}, settle=30)
    assert [a.reading_seq for a in result.unexplained] == [150]
    check = result.checks()[2]
    assert not check.passed and "vib-2:stuck:150" in check.detail


def test_an_alert_left_raised_fails_unless_its_sensor_is_still_in_an_anomaly(conn):
    store(conn, "energy-1", range(1, 201))
    store(conn, "energy-2", range(1, 201))
    label(conn, "energy-1", range(50, 60), "burst")
    label(conn, "energy-2", range(185, 199), "drift")
    alert(conn, "energy-1", "energy_baseline", 51, state="raised")
    alert(conn, "energy-2", "energy_high", 190, state="raised")
    result = audit(conn, {"energy-1": [life(200)], "energy-2": [life(200)]}, settle=30)
    assert [a.sensor_id for a in result.uncleared] == ["energy-1"]
    assert [a.sensor_id for a in result.uncleared_allowed] == ["energy-2"]
    assert not result.checks()[3].passed


def test_lives_and_tolerances_come_from_the_sensors_reports():
    summary = RunSummary("sensor_monitoring", None, "virtual", 1, 10.0, 1.0, reports={
        "sensors-0": {"sensors": {"temp-1": {"lives": [life(3)]}}, "checks": {"settle": 60.0, "in_flight": 5.0}},
        "sensors-1": {"sensors": {"temp-2": {"lives": [life(4)]}}, "checks": {"settle": 90.0, "in_flight": 2.0}},
        "processors": {"stored": 7}})
    assert {k: [v["produced"] for v in lives] for k, lives in reported_lives(summary).items()} == {
        "temp-1": [3], "temp-2": [4]}
    assert tolerances(summary) == (90.0, 5.0)
