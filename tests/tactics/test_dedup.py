from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forge_core.clock import VirtualClock
from forge_core.tactics.dedup import IdempotencyKeys, SqliteKeyStore, WindowDeduplicator


def test_window_drops_repeats_within_window(vclock: VirtualClock) -> None:
    dedup = WindowDeduplicator(1.0, vclock)
    results: list[tuple[float, bool]] = []

    async def main() -> None:
        for _ in range(12):
            results.append((round(vclock.elapsed, 2), dedup.seen("m1", "heartbeat")))
            assert not dedup.seen("m2", "heartbeat") or vclock.elapsed % 1 > 0
            await asyncio.sleep(0.25)

    vclock.run(main())
    accepted = [t for t, dup in results if not dup]
    assert accepted == [0.0, 1.0, 2.0]
    assert not dedup.seen("m1", "alarm"), "keys are (source, type)"


def test_window_memory_is_bounded(vclock: VirtualClock) -> None:
    dedup = WindowDeduplicator(1.0, vclock)

    async def main() -> None:
        for i in range(5000):
            dedup.seen(f"m{i}", "beat")
            await asyncio.sleep(0.01)

    vclock.run(main())
    assert len(dedup) <= 101


def test_idempotency_capacity_and_ttl(vclock: VirtualClock) -> None:
    keys = IdempotencyKeys(capacity=3)
    assert all(keys.first_time(k) for k in "abc")
    assert not keys.first_time("a")
    keys.first_time("d")  # evicts the least recently seen: b
    assert len(keys) == 3 and keys.first_time("b")
    timed = IdempotencyKeys(ttl=10.0, clock=vclock)
    assert timed.first_time("x")
    vclock.run_for(11.0)
    assert timed.first_time("x")


def test_store_survives_restart(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "keys.db")
    assert IdempotencyKeys(store=store).first_time("cmd-1")
    store.close()
    store = SqliteKeyStore(tmp_path / "keys.db")
    restarted = IdempotencyKeys(store=store)
    assert not restarted.first_time("cmd-1") and restarted.first_time("cmd-2")
    store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    deliveries=st.lists(st.integers(0, 30), max_size=200),
    capacity=st.integers(1, 50),
    restart_at=st.integers(0, 200),
)
def test_property_redelivered_command_applied_once(tmp_path_factory, deliveries, capacity, restart_at) -> None:
    store = SqliteKeyStore(tmp_path_factory.mktemp("k") / "keys.db")
    keys = IdempotencyKeys(capacity=capacity, store=store)
    applied: dict[int, int] = {}
    for n, cmd in enumerate(deliveries):
        if n == restart_at:
            keys = IdempotencyKeys(capacity=capacity, store=store)  # process restart
        if keys.first_time(f"cmd-{cmd}"):
            applied[cmd] = applied.get(cmd, 0) + 1
    store.close()
    assert applied == dict.fromkeys(set(deliveries), 1)


@settings(max_examples=60, deadline=None)
@given(deliveries=st.lists(st.integers(0, 30), max_size=200))
def test_property_in_memory_applied_once_within_capacity(deliveries) -> None:
    keys = IdempotencyKeys(capacity=31)
    applied = [cmd for cmd in deliveries if keys.first_time(str(cmd))]
    assert sorted(applied) == sorted(set(deliveries))
