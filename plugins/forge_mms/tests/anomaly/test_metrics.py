"""Tally: counts kept as a dict, reported by one observable counter per meter and name."""

from __future__ import annotations

import gc
from typing import Any

from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from forge_mms.anomaly.metrics import Tally


def points(reader: InMemoryMetricReader) -> dict[tuple[Any, ...], Any]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[tuple[Any, ...], Any] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    out[(metric.name, *sorted(dict(point.attributes or {}).items()))] = point.value  # type: ignore[union-attr]
    return out


def test_tallies_of_one_name_share_an_instrument_and_equal_points_add_up() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    a = Tally(meter, "t.readings", unit="1", description="d", attributes={"component": "a"}, fields=("outcome",))
    b = Tally(meter, "t.readings", unit="1", description="d", attributes={"component": "b"}, fields=("outcome",))
    again = Tally(meter, "t.readings", unit="1", description="d", attributes={"component": "a"}, fields=("outcome",))
    a.add(2, "stored")
    a.add(3, "stored")
    b.add(1, "stored")
    again.add(4, "stored")
    a.add(1, "malformed")
    assert points(reader) == {("t.readings", ("component", "a"), ("outcome", "stored")): 9,
                              ("t.readings", ("component", "a"), ("outcome", "malformed")): 1,
                              ("t.readings", ("component", "b"), ("outcome", "stored")): 1}
    b.add(1, "stored")
    assert points(reader)[("t.readings", ("component", "b"), ("outcome", "stored"))] == 2, "cumulative, collected again"


def test_a_tally_gone_is_no_longer_reported_and_without_telemetry_it_only_counts() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    gone = Tally(meter, "t.gone", unit="1", description="d", attributes={"component": "x"}, fields=())
    gone.add(1)
    kept = Tally(meter, "t.gone", unit="1", description="d", attributes={"component": "y"}, fields=())
    kept.add(2)
    del gone
    gc.collect()
    assert points(reader) == {("t.gone", ("component", "y")): 2}
    off = Tally(NoOpMeter("off"), "t.off", unit="1", description="d", attributes={}, fields=("k",))
    off.add(5, "v")
    assert off.counts == {("v",): 5}


def test_every_batch_reaches_the_histogram_at_the_flush() -> None:
    from forge_mms.anomaly.metrics import ProcessorMetrics

    reader = InMemoryMetricReader()
    metrics = ProcessorMetrics(MeterProvider(metric_readers=[reader]).get_meter("test"), "p")
    for _ in range(40):
        metrics.batch_took(1.0)
    metrics.batch_took(7.0)
    assert reader.get_metrics_data() is None or not [
        m for r in reader.get_metrics_data().resource_metrics for s in r.scope_metrics for m in s.metrics
        if m.name == "forge.mms.batch.duration"], "nothing before the flush"
    assert metrics.flush() == 41
    data = reader.get_metrics_data()
    assert data is not None
    (point,) = [p for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics
                if m.name == "forge.mms.batch.duration" for p in m.data.data_points]
    assert (point.count, point.sum, point.max) == (41, 47.0, 7.0)  # type: ignore[union-attr]
    assert dict(point.attributes) == {"component": "p"}
    assert ProcessorMetrics(None, "off").flush() == 0, "telemetry off: kept and dropped"
