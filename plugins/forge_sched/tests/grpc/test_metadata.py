"""forge-epoch / forge-lease: what a reporter sends and what the servicer accepts."""

from __future__ import annotations

import pytest

from forge_sched.grpc import EPOCH_KEY, LEASE_KEY, FenceError, fence_metadata, read_fence


def test_round_trip() -> None:
    assert fence_metadata(7, "mms") == ((EPOCH_KEY, "7"), (LEASE_KEY, "mms"))
    assert read_fence([("user-agent", "x"), *fence_metadata(7, "mms")]) == (7, "mms")


@pytest.mark.parametrize(("metadata", "field", "words"), [
    ([], EPOCH_KEY, "missing"),
    (None, EPOCH_KEY, "missing"),
    ([(LEASE_KEY, "mms")], EPOCH_KEY, "missing"),
    ([(EPOCH_KEY, "abc"), (LEASE_KEY, "mms")], EPOCH_KEY, "positive integer"),
    ([(EPOCH_KEY, "-3"), (LEASE_KEY, "mms")], EPOCH_KEY, "positive integer"),
    ([(EPOCH_KEY, "0"), (LEASE_KEY, "mms")], EPOCH_KEY, "positive integer"),
    ([(EPOCH_KEY, "1.5"), (LEASE_KEY, "mms")], EPOCH_KEY, "positive integer"),
    ([(EPOCH_KEY, "٣"), (LEASE_KEY, "mms")], EPOCH_KEY, "positive integer"),  # a non-ASCII digit
    ([(EPOCH_KEY, str(2**63)), (LEASE_KEY, "mms")], EPOCH_KEY, "positive integer"),
    ([(EPOCH_KEY, "2"), (EPOCH_KEY, "3"), (LEASE_KEY, "mms")], EPOCH_KEY, "twice"),
    ([(EPOCH_KEY, "2")], LEASE_KEY, "missing"),
    ([(EPOCH_KEY, "2"), (LEASE_KEY, " ")], LEASE_KEY, "lease name"),
    ([(EPOCH_KEY, "2"), (LEASE_KEY, "x" * 151)], LEASE_KEY, "lease name"),
])
def test_missing_or_malformed_fences_name_the_key(metadata, field, words) -> None:
    with pytest.raises(FenceError) as caught:
        read_fence(metadata)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert words in caught.value.detail
