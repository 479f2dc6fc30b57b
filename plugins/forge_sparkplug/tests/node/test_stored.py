"""The outbox body of an update: json.dumps's bytes for every kind of value (the look-back's byte bound counts them)."""

from __future__ import annotations

import json
import math
import random
from enum import IntEnum
from typing import Any

from forge_sparkplug.node.metrics import Entry
from forge_sparkplug.node.stored import stored_body


class Code(IntEnum):
    RUN = 1


def entry(device: str | None, name: str, value: Any, stamp: int) -> Entry:
    return Entry(device, name, 1, 9, 0.0, value, stamp, value, True)


def reference(device: str | None, entries: list[Entry]) -> bytes:
    return json.dumps({"d": device, "m": [[e.name, e.value, e.timestamp] for e in entries]}).encode()


ODD = ["", "é", "\"quoted\"", "back\\slash", "tab\tnew\nline\x00", "\u2028", "😀 emoji", "\x7f", "/"]


def values(rng: random.Random) -> Any:
    kind = rng.randrange(12)
    return [
        lambda: rng.randint(-10**6, 10**6),
        lambda: rng.randint(-(2**70), 2**70),
        lambda: rng.uniform(-1e6, 1e6),
        lambda: rng.choice([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-320, 1.5e300, 0.1 + 0.2]),
        lambda: rng.choice(ODD) + str(rng.random()),
        lambda: rng.choice([True, False]),
        lambda: None,
        lambda: Code.RUN,
        lambda: [1, "a", None],  # not a Sparkplug scalar: json.dumps writes it
        lambda: {"k": 1.5},
        lambda: rng.choice(ODD),
        lambda: rng.randint(0, 2**63),
    ][kind]()


def test_the_body_is_json_dumps_bytes_for_every_kind_of_value_and_name() -> None:
    rng = random.Random(17)
    for _ in range(3000):
        device = rng.choice([None, "M1", "dev é", "a\"b"])
        entries = [entry(device, rng.choice(["GoodCount", "State", *ODD]), values(rng), rng.randint(0, 2**42))
                   for _ in range(rng.randrange(0, 5))]
        assert stored_body(device, entries) == reference(device, entries)


def test_a_body_reads_back_as_what_the_replay_expects() -> None:
    entries = [entry("M1", "State", "running", 1_700_000_000_000), entry("M1", "Temp", math.nan, 1_700_000_000_001)]
    item = json.loads(stored_body("M1", entries))
    assert item["d"] == "M1" and item["m"][0] == ["State", "running", 1_700_000_000_000]
    assert math.isnan(item["m"][1][1])
