"""A flood of malformed messages (issue 11 §3): dead letters are recorded off the event loop in
batches, bounded and accounted for; republished as reason + excerpt + reference, never the body;
logged with rate limiting; a flooding source is quarantined, visibly."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import orjson
import sqlalchemy as sa
from sqlalchemy import event, text

from forge_core.messages import deadletter as dl
from forge_core.messages.deadletter import DeadLetter, DeadLetterChannel
from forge_core.messages.envelope import RawMessage
from forge_core.plant import load_plant
from forge_core.runtime import Runtime
from forge_core.testing import TestPlant


def _manifest(basic_manifest: str, dead_letters: str = "") -> str:
    manifest = basic_manifest.replace("migrate_on_start: false", "migrate_on_start: true")
    return manifest + (f"settings:\n  dead_letters: {dead_letters}\n" if dead_letters else "")


def _slow_inserts(engine: sa.Engine, delay: float, seen: list[tuple[int, int]]) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def slow(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO FORGE_DEAD_LETTERS"):
            seen.append((threading.get_ident(), len(parameters) if executemany else 1))
            time.sleep(delay)  # a slow database


def _flood(path, n: int, delay: float, *, stop_timeout: float = 30.0):  # type: ignore[no-untyped-def]
    plugins, manifest = load_plant(path)

    async def main():  # type: ignore[no-untyped-def]
        runtime = Runtime(manifest, plugins, serve_health=False)
        await runtime.start()
        seen: list[tuple[int, int]] = []
        _slow_inserts(runtime.storage(), delay, seen)
        bus = runtime.transports["bus"]
        started = time.perf_counter()
        for i in range(n):
            await bus.publish_raw(f"plant/m{i % 2 + 1}/command", RawMessage(b"not json " + str(i).encode(), {}))
        on_loop = time.perf_counter() - started
        stop_started = time.perf_counter()
        summary = await asyncio.wait_for(runtime.stop(), stop_timeout)
        return on_loop, time.perf_counter() - stop_started, seen, summary, threading.get_ident()

    return asyncio.run(main())


def test_sql_recording_runs_off_the_event_loop_in_batches(plant_dir, basic_manifest):
    path = plant_dir(_manifest(basic_manifest, "{quarantine_after: 100000}"))
    on_loop, _, seen, summary, loop_thread = _flood(path, 300, 0.02)
    # 300 inserts at 20 ms each on the loop would block it 6 s; off the loop it is not blocked at all
    assert on_loop < 1.0, f"300 dead letters blocked the event loop {on_loop:.2f}s"
    assert seen and all(thread != loop_thread for thread, _ in seen), "a dead letter was written on the loop"
    assert len(seen) < 300 and sum(rows for _, rows in seen) == 300, f"not batched: {len(seen)} inserts"
    accounting = summary.extra["dead_letters"]
    assert summary.dead_letters == {"decode_error": 300}
    assert (accounting["recorded"], accounting["dropped"], accounting["pending"]) == (300, 0, 0)
    engine = sa.create_engine(f"sqlite:///{path}/plant.db")
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from forge_dead_letters")).scalar_one() == 300
    engine.dispose()


def test_stop_flushes_within_its_bound_and_counts_what_it_could_not_write(plant_dir, basic_manifest):
    path = plant_dir(_manifest(basic_manifest, "{quarantine_after: 100000, batch: 10, flush_timeout: 0.3}"))
    _, stopping, _seen, summary, _ = _flood(path, 300, 0.1)  # 30 batches x 0.1 s: 3 s to write everything
    assert stopping < 1.5, f"stop waited {stopping:.2f}s for a slow database (bound 0.3 s)"
    a = summary.extra["dead_letters"]
    assert a["dropped_at_stop"] > 0 and a["recorded"] < 300
    assert a["recorded"] + a["dropped"] + a["pending"] == a["total"] == 300, a


def test_the_writer_queue_is_bounded_and_overflow_is_counted(plant_dir, basic_manifest):
    path = plant_dir(_manifest(basic_manifest, "{quarantine_after: 100000, queue_records: 50, batch: 10}"))
    _, _, _, summary, _ = _flood(path, 300, 0.05)
    a = summary.extra["dead_letters"]
    assert a["dropped_queue_full"] > 0
    assert a["recorded"] + a["dropped"] + a["pending"] == 300, a


def test_a_published_dead_letter_carries_reason_excerpt_and_reference_never_the_body(plant_dir, basic_manifest):
    with TestPlant(plant_dir(_manifest(basic_manifest))) as plant:
        body = b"{not json " + b"x" * 100_000
        plant.publish_raw("plant/m1/command", body)
        plant.publish_raw("plant/m1/command", {"target": "m1", "junk": "y" * 50_000},
                          headers={"ce_type": "test.command"})
        plant.advance(0.1)
        letters = plant.sent("forge/deadletter/#", type="forge.deadletter")
        rows = plant.runtime.storage().connect().execute(
            text("select reason, headers, length(body) from forge_dead_letters order by id")).all()
    assert [e.payload["reason"] for e in letters] == ["decode_error", "invalid"]
    for letter in letters:
        payload = letter.payload
        assert len(orjson.dumps(payload)) < 2048, "the republished dead letter must be bounded"
        assert payload.get("body") is None and payload.get("message") is None
        assert len(payload["excerpt"].encode()) <= 512 and payload["truncated"] is True
        assert payload["size"] > 50_000 and payload["id"].startswith("dl-")
    assert letters[0].payload["excerpt"].startswith("{not json xxx")
    # the reference finds the stored row
    ids = [orjson.loads(r.headers)["forge-dead-letter-id"] for r in rows]
    assert ids == [e.payload["id"] for e in letters]


def test_dead_letters_are_logged_once_per_reason_per_interval_with_a_count(caplog):
    channel = DeadLetterChannel(quarantine_after=100_000)
    with caplog.at_level(logging.WARNING, logger="forge.deadletter"):
        for i in range(1000):
            channel.put(DeadLetter(dl.DECODE_ERROR, "not JSON", f"t/{i}", "bus", 1000.0 + i / 1000))
        channel.put(DeadLetter(dl.INVALID, "bad", "t/x", "bus", 1001.0))
        channel.log.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "[decode_error]" in lines[0] and "[invalid]" in lines[1]
    assert lines[2] == "999 more [decode_error] dead letters not logged one by one"
    assert channel.counts == {"decode_error": 1000, "invalid": 1}


def test_a_flooding_source_is_quarantined_visibly_and_its_letters_counted(plant_dir, basic_manifest):
    with TestPlant(plant_dir(_manifest(basic_manifest, "{quarantine_after: 100, quarantine_for: 30}"))) as plant:
        plant.advance(0.5)
        for i in range(300):
            plant.publish_raw("plant/m1/command", f"not json {i}")
        plant.advance(0.1)
        _, _, health = plant.runtime.health_snapshot()
        accounting = health["dead_letter_accounting"]
        assert health["dead_letters"] == {"decode_error": 300}
        assert accounting["quarantined"] == 200 and accounting["offered"] == 100
        assert accounting["recorded"] == 100 and accounting["dropped"] == 0
        assert list(accounting["quarantines"]) == ["bus:plant/m1/command"]
        assert accounting["quarantines"]["bus:plant/m1/command"]["dropped"] == 200
        notice = plant.sent("forge/deadletter/quarantined", type="forge.deadletter")
        assert [e.payload["source"] for e in notice] == ["bus:plant/m1/command"]
        # valid messages from that topic still flow: only its dead letters are held back
        plant.publish("plant/m1/command", "test.command", {"target": "m1", "action": "go"})
        assert plant.component("m1").commands == ["go"]
        # another source is not affected
        plant.publish_raw("plant/m2/command", "not json either")
        assert plant.runtime.dead_letters.stats["offered"] == 101
        plant.advance(31)
        plant.publish_raw("plant/m1/command", "not json, after the quarantine")
        plant.advance(0.1)
        ended = plant.sent("forge/deadletter/quarantined", type="forge.deadletter")
        assert len(ended) == 2 and ended[1].payload["dropped"] == 200 and "ended" in ended[1].payload["detail"]
        assert plant.runtime.dead_letters.stats["offered"] == 102
    a = plant.summary.extra["dead_letters"]
    assert a["total"] == 302 == a["quarantined"] + a["recorded"] + a["dropped"] + a["pending"]


def test_the_accounting_of_several_processes_is_summed_and_checked():
    """Issue 11 §3: a distributed run's dead letters, every process's accounting summed (quarantines
    keyed by process), and a check that fails when one process cannot account for its letters."""
    from forge_core.cli.output import summary_table
    from forge_core.runtime.dead_letter_sinks import accounting_check, merge_accounting
    from forge_core.runtime.summary import RunSummary

    a = {"total": 10, "offered": 8, "quarantined": 2, "recorded": 7, "dropped": 1, "dropped_rate": 1, "pending": 0,
         "published": 8, "not_published": 0, "kept_in_memory": 8, "kept_bytes": 100,
         "quarantines": {"mqtt:junk/1": {"dropped": 2}}}
    b = {"total": 5, "offered": 5, "quarantined": 0, "recorded": 5, "dropped": 0, "pending": 0, "published": 3,
         "not_published": 2, "kept_in_memory": 5, "kept_bytes": 50, "quarantines": {}}
    merged = merge_accounting([("health", a), ("bridge", b)], lives_without_summary=1)
    assert (merged["total"], merged["quarantined"], merged["recorded"], merged["dropped"], merged["dropped_rate"]) == (
        15, 2, 12, 1, 1)
    assert merged["quarantines"] == {"health/mqtt:junk/1": {"dropped": 2}}
    assert merged["by_process"] == {"bridge": 5, "health": 10} and merged["lives_without_summary"] == 1
    check = accounting_check([("health", a), ("bridge", b)])
    assert check.passed and check.detail == "15 letters in 2 summaries"

    lost = dict(b, recorded=3)  # two letters neither recorded nor counted as dropped
    check = accounting_check([("health", a), ("bridge", lost)])
    assert not check.passed and "bridge: offered 5 != recorded 3 + dropped 0" in check.detail

    summary = RunSummary("p", "distributed", "real", None, 1.0, 1.0, dead_letters={"decode_error": 15},
                         extra={"dead_letters": merged})
    table = next(t for t in summary_table(summary) if getattr(t, "title", None) == "dead-letter accounting")
    rows = dict(zip(table.columns[0]._cells, table.columns[1]._cells, strict=True))
    assert rows["total"] == "15 = 2 quarantined + 13 offered"
    assert rows["offered"] == "12 recorded + 1 dropped (rate 1) + 0 pending"
    assert rows["by process"] == "bridge 5, health 10" and "1 killed lives" in rows["not counted"]


def test_a_letter_a_transport_makes_while_closing_is_still_recorded(plant_dir, basic_manifest):
    """forge_kafka dead-letters the records still queued at its close_timeout: the SQL store must
    close after the transports, not before (the letter was counted dropped), and the publisher, whose
    transports are gone by then, counts it not published instead of sending it."""
    path = plant_dir(_manifest(basic_manifest, "{quarantine_after: 100000}"))
    plugins, manifest = load_plant(path)

    async def main():  # type: ignore[no-untyped-def]
        runtime = Runtime(manifest, plugins, serve_health=False)
        await runtime.start()
        bus = runtime.transports["bus"]
        close = bus.close

        async def close_giving_up() -> None:
            assert bus.on_undeliverable is not None
            bus.on_undeliverable("plant/m1/command", RawMessage(b'{"queued": true}', {}),
                                 ConnectionError("broker down at close"))
            await close()

        bus.close = close_giving_up  # type: ignore[method-assign]
        return await runtime.stop()

    summary = asyncio.run(main())
    accounting = summary.extra["dead_letters"]
    assert summary.dead_letters == {"undeliverable": 1}
    assert (accounting["recorded"], accounting["dropped"], accounting["not_published"]) == (1, 0, 1), accounting
    engine = sa.create_engine(f"sqlite:///{path}/plant.db")
    with engine.connect() as conn:
        row = conn.execute(text("select reason, topic from forge_dead_letters")).one()
    engine.dispose()
    assert tuple(row) == ("undeliverable", "plant/m1/command")
