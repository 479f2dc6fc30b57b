"""Grant history: every lease backend lists the epochs it ever granted, with holder and time, so a
report can check that receivers applied only epochs some leader really held (issue 11 §1)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from forge_core.tactics import (
    Grant,
    MemoryLeaseBackend,
    RedisLeaseBackend,
    SqlLeaseBackend,
)


async def history_contract(b, *, real_time: bool = False) -> None:
    ttl = 0.3 if real_time else 1.0  # Redis expires by its own clock: wait for real
    assert await b.grants("l") == []
    la = await b.try_acquire("l", "a", ttl, now=10.0)
    assert await b.try_acquire("l", "a", ttl, now=10.1) is not None  # re-acquiring its own live lease: no grant
    assert await b.renew("l", "a", la.epoch, ttl, now=10.2) is not None  # renewal: no grant
    assert await b.try_acquire("l", "b", ttl, now=10.2) is None  # refused: no grant
    if real_time:
        await asyncio.sleep(ttl + 0.2)
    lb = await b.try_acquire("l", "b", ttl, now=12.0)  # expired: b gets a new epoch
    await b.release("l", "b", lb.epoch)
    lc = await b.try_acquire("l", "c", ttl, now=12.1)  # released: c at once
    await b.try_acquire("other", "z", ttl, now=13.0)
    grants = await b.grants("l")
    assert [(g.epoch, g.holder) for g in grants] == [(la.epoch, "a"), (lb.epoch, "b"), (lc.epoch, "c")]
    assert all(isinstance(g, Grant) for g in grants)
    if not real_time:  # memory and SQL record the caller's clock; Redis its own TIME
        assert [g.at for g in grants] == [10.0, 12.0, 12.1]
    assert [g.holder for g in await b.grants("other")] == ["z"]
    # a poller asks only for what came after the last epoch it read
    assert [g.holder for g in await b.grants("l", after=la.epoch)] == ["b", "c"]
    assert [g.holder for g in await b.grants("l", after=lc.epoch)] == []
    assert await b.grants("l", after=0) == grants


async def bounded(b) -> None:
    now = 0.0
    for i in range(7):
        now += 2.0
        lease = await b.try_acquire("l", f"h{i}", 1.0, now=now)
        assert lease is not None
        await b.release("l", f"h{i}", lease.epoch)
    grants = await b.grants("l")
    assert [g.holder for g in grants] == ["h4", "h5", "h6"], "only the newest `history` grants are kept"
    assert [g.epoch for g in grants] == sorted(g.epoch for g in grants)


def test_memory_backend_lists_its_grants() -> None:
    asyncio.run(history_contract(MemoryLeaseBackend()))
    asyncio.run(bounded(MemoryLeaseBackend(history=3)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'leases.db'}")
    else:
        eng = sa.create_engine(request.getfixturevalue("postgres_url"))
    yield eng
    eng.dispose()


def test_sql_backend_lists_its_grants(engine) -> None:
    asyncio.run(history_contract(SqlLeaseBackend(engine)))
    assert sa.inspect(engine).has_table("forge_leases_grants")


def test_sql_backend_history_is_bounded_and_shared(engine) -> None:
    asyncio.run(bounded(SqlLeaseBackend(engine, table="bounded", history=3)))
    # another process (another backend object on the same table) reads the same history
    assert [g.holder for g in asyncio.run(SqlLeaseBackend(engine, table="bounded").grants("l"))] == ["h4", "h5", "h6"]


@pytest.mark.servers
def test_redis_backend_lists_its_grants(redis_url: str) -> None:
    async def main() -> None:
        b = RedisLeaseBackend(redis_url)
        await history_contract(b, real_time=True)
        grants = await b.grants("l")
        assert all(g.at > 1e9 for g in grants), "Redis TIME, in seconds since the epoch"
        assert [g.at for g in grants] == sorted(g.at for g in grants)
        await b.aclose()
        small = RedisLeaseBackend(redis_url, prefix="forge:small:", history=3)
        await bounded(small)
        await small.aclose()

    asyncio.run(main())
