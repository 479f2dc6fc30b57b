"""New order ids (forge_sched.orders.ids): a revived replica's seeded stream replays the ids its
earlier lives stored; the service hands out the stream's first id not stored, testing ids ahead in
one statement, and picks the ids a test per id picks (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime

from forge_sched.orders.ids import AHEAD, v4_hex
from forge_sched.orders.service import NewOrder


def stream(seed: int):
    rng = random.Random(seed)
    return lambda: "ord-" + v4_hex(rng.getrandbits(128))


def test_v4_hex_is_the_uuid_modules_version_4_text():
    rng = random.Random(3)
    for bits in [0, (1 << 128) - 1, *(rng.getrandbits(128) for _ in range(2000))]:
        assert v4_hex(bits) == uuid.UUID(int=bits, version=4).hex


def test_a_revived_stream_skips_every_stored_id_in_the_streams_order(make_service_on, engine):
    order = NewOrder("widget", 1, datetime(2030, 1, 1, tzinfo=UTC))

    def life(seed: int, creations: int) -> list[str]:
        service = make_service_on(engine)
        service.ids.new_id = stream(seed)
        return [asyncio.run(service.create_order(order, assign=False))[0]["id"] for _ in range(creations)]

    first = life(7, AHEAD * 2 + 5)  # the first life: the stream's ids, in order
    expected = stream(7)
    assert first == [expected() for _ in range(len(first))]
    other = life(8, 3)  # another replica's stream meanwhile
    again = life(7, 4)  # revived: the same stream, past every id it stored (three chunks of tests ahead)
    assert again == [expected() for _ in range(4)]
    assert not set(again) & set(first) and not set(again) & set(other)
    assert life(7, 2) == [expected() for _ in range(2)]  # and again, past the second life's too
