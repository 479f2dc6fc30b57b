"""The dead-letter channel's in-memory store is bounded in bytes, not only in letters (issue 11 §3)."""

from __future__ import annotations

from forge_core.messages import deadletter as dl
from forge_core.messages.deadletter import DeadLetter, DeadLetterChannel


def test_memory_store_is_bounded_in_bytes():
    channel = DeadLetterChannel(quarantine_after=100_000)
    body = "x" * 1_000_000
    for i in range(40):  # 40 MB of bodies; the default bound is 16 MiB
        channel.put(DeadLetter(dl.DECODE_ERROR, "not JSON", f"t/{i}", "bus", 1000.0 + i, body=body))
    kept = sum(len(letter.body or "") for letter in channel.recent)
    assert kept <= 16 * 1024 * 1024, f"{kept} bytes of dead letters kept in memory"
    assert channel.recent[-1].topic == "t/39", "the newest are kept"
    assert channel.total == 40


def test_a_letter_larger_than_the_store_is_kept_without_its_message():
    channel = DeadLetterChannel(keep_bytes=10_000)
    channel.put(DeadLetter(dl.DECODE_ERROR, "not JSON", "t", "bus", 1000.0, body="y" * 50_000))
    (letter,) = channel.recent
    assert letter.body is None and letter.size == 50_000 and channel.recent_bytes <= 10_000
