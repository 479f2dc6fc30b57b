"""BufferedHistogram: values kept locally reach OpenTelemetry's readers with the count, sum, buckets, min
and max that recording each value would have given, whichever path the hand-over takes."""

from __future__ import annotations

import math
import random
import threading
from typing import Any

import pytest
from opentelemetry.metrics import NoOpHistogram
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import (
    DropAggregation,
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)

from forge_core.telemetry_buffer import BufferedHistogram

ATTRS = {"component": "processors"}
#: on bucket edges (0, 5, 10, 1000 are default boundaries), between them, past the last one
VALUES = [0.0, 0.004, 5.0, 5.0001, 7.5, 10.0, 24.9, 250.0, 1000.0, 12_345.6] + [random.Random(3).random() * 40
                                                                               for _ in range(500)]


def points(reader: InMemoryMetricReader) -> dict[str, Any]:
    data = reader.get_metrics_data()
    found: dict[str, Any] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    found[metric.name] = point
    return found


def pair(reader: InMemoryMetricReader | None = None, views: tuple[View, ...] = (),
         **kw: Any) -> tuple[InMemoryMetricReader, BufferedHistogram, Any]:
    """A buffered histogram and a plain one recorded value by value, on the same provider."""
    reader = reader or InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader], views=list(views)).get_meter("t")
    buffered = BufferedHistogram(meter.create_histogram("buffered", unit="ms"), ATTRS, **kw)
    return reader, buffered, meter.create_histogram("direct", unit="ms")


def same(a: Any, b: Any) -> None:
    assert a.count == b.count
    assert a.sum == pytest.approx(b.sum, rel=1e-12)
    assert tuple(a.bucket_counts) == tuple(b.bucket_counts)
    assert tuple(a.explicit_bounds) == tuple(b.explicit_bounds)
    assert (a.min, a.max) == (b.min, b.max)


def test_every_value_counted_once_as_record_would() -> None:
    reader, buffered, direct = pair()
    for value in VALUES:
        buffered.record(value)
        direct.record(value, ATTRS)
    assert points(reader).keys() == {"direct"}  # nothing handed over before the flush
    assert buffered.flush() == len(VALUES)
    assert buffered.merged  # the direct hand-over, on the SDK this project pins
    got = points(reader)
    same(got["buffered"], got["direct"])
    assert got["buffered"].count == len(VALUES) == buffered.count
    assert got["buffered"].sum == pytest.approx(math.fsum(VALUES))
    assert buffered.total == pytest.approx(got["buffered"].sum)
    assert dict(got["buffered"].attributes) == ATTRS
    assert buffered.flush() == 0  # nothing twice


def test_cumulative_across_flushes_and_collections() -> None:
    reader, buffered, direct = pair()
    for chunk in (VALUES[:3], VALUES[3:200], VALUES[200:]):
        for value in chunk:
            buffered.record(value)
            direct.record(value, ATTRS)
        buffered.flush()
        got = points(reader)
        same(got["buffered"], got["direct"])


def test_delta_reader_gets_each_flush_once() -> None:
    delta = InMemoryMetricReader(preferred_temporality={SdkHistogram: AggregationTemporality.DELTA})
    reader, buffered, _ = pair(delta)
    counts, sums = [], []
    for chunk in (VALUES[:100], VALUES[100:]):
        for value in chunk:
            buffered.record(value)
        buffered.flush()
        point = points(reader)["buffered"]
        counts.append(point.count)
        sums.append(point.sum)
    assert counts == [100, len(VALUES) - 100]
    assert sum(sums) == pytest.approx(math.fsum(VALUES))


def test_two_readers_and_a_view_with_its_own_buckets_and_attributes() -> None:
    other = InMemoryMetricReader()
    reader = InMemoryMetricReader()
    view = View(instrument_name="buffered", aggregation=ExplicitBucketHistogramAggregation((1.0, 2.0, 30.0)),
                attribute_keys={"component"})
    direct_view = View(instrument_name="direct", aggregation=ExplicitBucketHistogramAggregation((1.0, 2.0, 30.0)),
                       attribute_keys={"component"})
    meter = MeterProvider(metric_readers=[reader, other], views=[view, direct_view]).get_meter("t")
    attrs = {**ATTRS, "dropped": "by the view"}
    buffered = BufferedHistogram(meter.create_histogram("buffered"), attrs)
    direct = meter.create_histogram("direct")
    for value in VALUES:
        buffered.record(value)
        direct.record(value, attrs)
    buffered.flush()
    assert buffered.merged
    for r in (reader, other):
        got = points(r)
        same(got["buffered"], got["direct"])
        assert tuple(got["buffered"].explicit_bounds) == (1.0, 2.0, 30.0)
        assert dict(got["buffered"].attributes) == ATTRS


def test_another_aggregation_gets_every_value_through_record() -> None:
    views = (View(instrument_name="buffered", aggregation=ExponentialBucketHistogramAggregation()),
             View(instrument_name="direct", aggregation=ExponentialBucketHistogramAggregation()))
    reader, buffered, direct = pair(views=views)
    for value in VALUES:
        buffered.record(value)
        direct.record(value, ATTRS)
    assert buffered.flush() == len(VALUES)
    assert not buffered.merged
    got = points(reader)
    assert got["buffered"].count == got["direct"].count == len(VALUES)
    assert got["buffered"].sum == pytest.approx(got["direct"].sum)


def test_a_dropped_instrument_adds_nothing() -> None:
    reader, buffered, _ = pair(views=(View(instrument_name="buffered", aggregation=DropAggregation()),))
    buffered.record(1.0)
    buffered.flush()
    assert "buffered" not in points(reader)


def test_limit_flushes_and_bad_values_are_counted_not_recorded() -> None:
    reader, buffered, _ = pair(limit=4)
    for value in (1.0, float("nan"), -2.0, 3.0):
        buffered.record(value)
    assert buffered.values == []  # the fourth value flushed the buffer
    assert (buffered.count, buffered.rejected) == (2, 2)
    point = points(reader)["buffered"]
    assert (point.count, point.sum, point.min, point.max) == (2, 4.0, 1.0, 3.0)
    with pytest.raises(ValueError, match="limit must be at least 1; got 0"):
        BufferedHistogram(NoOpHistogram("x"), limit=0)


def test_noop_histogram_costs_a_flush_nothing() -> None:
    buffered = BufferedHistogram(NoOpHistogram("off"), ATTRS)
    buffered.record(1.0)
    assert buffered.flush() == 0 and buffered.values == []


def test_collections_on_another_thread_lose_nothing() -> None:
    delta = InMemoryMetricReader(preferred_temporality={SdkHistogram: AggregationTemporality.DELTA})
    reader, buffered, _ = pair(delta)
    seen: list[int] = []
    done = threading.Event()

    def collect() -> None:
        while not done.is_set():
            point = points(reader).get("buffered")
            seen.append(point.count if point else 0)

    thread = threading.Thread(target=collect)
    thread.start()
    for _ in range(300):
        for value in VALUES[:50]:
            buffered.record(value)
        buffered.flush()
    done.set()
    thread.join()
    point = points(reader).get("buffered")
    assert sum(seen) + (point.count if point else 0) == 300 * 50


@pytest.mark.parametrize("version", ["1.46.0", "2.0.0", "1.44.1", "dev"])
def test_an_sdk_release_it_is_not_tested_with_takes_record_and_exports_the_same(monkeypatch, caplog,
                                                                              version: str) -> None:
    """On an SDK release outside TESTED_SDK the hand-over goes value by value, says so once, and the
    exported histograms equal both what record() gives and what the direct path gave."""
    import forge_core.telemetry_buffer as tb

    merged_reader, merged, _ = pair()
    for value in VALUES:
        merged.record(value)
    merged.flush()
    assert merged.merged
    monkeypatch.setattr(tb, "SDK_VERSION", version)
    monkeypatch.setattr(tb, "_gate", None)
    caplog.set_level("INFO", logger="forge.telemetry")
    reader, buffered, direct = pair()
    for chunk in (VALUES[:7], VALUES[7:]):
        for value in chunk:
            buffered.record(value)
            direct.record(value, ATTRS)
        assert buffered.flush() == len(chunk)
        assert not buffered.merged
    got = points(reader)
    same(got["buffered"], got["direct"])
    same(got["buffered"], points(merged_reader)["buffered"])
    notes = [r.getMessage() for r in caplog.records if r.name == "forge.telemetry"]
    assert len(notes) == 1 and version in notes[0] and "1.45" in notes[0], notes
