"""The hot-path encoders the Kafka transport relies on write exactly what the plain ones write."""

from __future__ import annotations

import random

from forge_core import Envelope, IdGenerator, format_time
from forge_core.transport import Decoder, encode, fast_format_time


def test_fast_format_time_is_format_time() -> None:
    rng = random.Random(7)
    samples = [rng.uniform(-1e9, 4e9) for _ in range(20000)]
    samples += [1_795_324_167 + k * 0.0000005 for k in range(20000)]  # every half-microsecond tie
    samples += [0.0, -0.5, -1e-7, 0.9999999999, 1.9999995, 1_704_067_200.123456]
    for epoch in samples:
        assert fast_format_time(epoch) == format_time(epoch), epoch


def test_headers_round_trip_with_and_without_prefix() -> None:
    for prefix in ("ce_", ""):
        sent = Envelope("a.b", {"x": 1}, "m1", "id-1", 1_704_067_200.5, "k", 3, {"traceparent": "00-a-b-01"})
        body, headers = encode(sent, prefix)
        assert headers[f"{prefix}time"] == format_time(sent.time) and headers[f"{prefix}schemaversion"] == "3"
        decoder = Decoder(prefix=prefix, ids=IdGenerator(1), clock_time=lambda: 0.0)
        for _ in range(2):  # the second decode uses the cached header names
            got = decoder.decode("t", body, {**headers, "foreign": "x"} if prefix else headers)
            assert (got.id, got.source, got.type, got.key, got.schema_version, got.time, got.headers) == (
                "id-1", "m1", "a.b", "k", 3, sent.time, {"traceparent": "00-a-b-01"})
