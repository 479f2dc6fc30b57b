"""Telemetry: spans linked across the bus through headers, disabled means no spans, exporters."""

from __future__ import annotations

import gc
import io
import weakref

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from forge_core.telemetry import Telemetry, TelemetryError


def test_publish_and_handle_spans_linked_through_headers() -> None:
    tel = Telemetry.from_settings(traces_exporter="memory", metrics_exporter="memory", service_name="t")
    assert tel.enabled
    headers: dict[str, str] = {}
    with tel.tracer.start_as_current_span("publish plant/oven", kind=SpanKind.PRODUCER):
        tel.inject(headers)
    assert set(headers) >= {"traceparent"}
    assert headers["traceparent"].startswith("00-")

    # ... the envelope crosses the bus; the receiver has only the headers ...
    parent = tel.extract(dict(headers))
    with tel.tracer.start_as_current_span("handle plant/oven", context=parent, kind=SpanKind.CONSUMER):
        pass

    assert isinstance(tel.span_exporter, InMemorySpanExporter)
    publish, handle = tel.span_exporter.get_finished_spans()
    assert publish.name == "publish plant/oven" and handle.name == "handle plant/oven"
    assert handle.context.trace_id == publish.context.trace_id
    assert handle.parent is not None and handle.parent.span_id == publish.context.span_id
    assert publish.resource.attributes["service.name"] == "t"
    tel.shutdown()
    tel.shutdown()  # idempotent


def test_instruments_are_recorded() -> None:
    tel = Telemetry.from_settings(traces_exporter="memory", metrics_exporter="memory")
    tel.messages_published.add(2, {"transport": "memory"})
    tel.messages_handled.add(1)
    tel.messages_dead_lettered.add(1, {"reason": "schema"})
    tel.component_restarts.add(1)
    tel.failovers.add(1)
    tel.handle_duration.record(3.5)
    assert isinstance(tel.metric_reader, InMemoryMetricReader)
    data = tel.metric_reader.get_metrics_data()
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert names == {
        "forge.messages.published",
        "forge.messages.handled",
        "forge.messages.dead_lettered",
        "forge.component.restarts",
        "forge.failovers",
        "forge.handle.duration",
    }
    tel.shutdown()


def test_a_meter_provider_that_pushes_nothing_is_not_held_by_the_exit_hook() -> None:
    # OpenTelemetry's atexit flush kept every such provider (and the callbacks of its observable instruments,
    # a runtime's /metrics among them) until shutdown(); a plant whose start raised never shut it down.
    tel = Telemetry.from_settings(metrics_exporter="memory")
    provider = weakref.ref(tel.meter_provider)
    del tel
    gc.collect()
    assert provider() is None


def test_disabled_creates_no_spans_and_no_headers() -> None:
    tel = Telemetry.from_settings(traces_exporter="none")
    assert not tel.enabled
    assert tel.span_exporter is None
    with tel.tracer.start_as_current_span("publish") as span:
        assert not span.is_recording()
        headers: dict[str, str] = {}
        tel.inject(headers)
    assert headers == {}  # no valid span context: nothing to propagate
    tel.messages_published.add(1)  # instruments still work (no reader: dropped)
    tel.shutdown()


def test_providers_are_private() -> None:
    from opentelemetry import trace

    before = trace.get_tracer_provider()
    a = Telemetry.from_settings(traces_exporter="memory")
    b = Telemetry.from_settings(traces_exporter="memory")
    assert trace.get_tracer_provider() is before
    with a.tracer.start_as_current_span("only-a"):
        pass
    assert len(a.span_exporter.get_finished_spans()) == 1  # type: ignore[union-attr]
    assert b.span_exporter.get_finished_spans() == ()  # type: ignore[union-attr]


def test_console_exporter_writes_to_stream() -> None:
    stream = io.StringIO()
    tel = Telemetry.from_settings(traces_exporter="console", stream=stream, service_name="oven")
    with tel.tracer.start_as_current_span("handle forge.oven.Temperature"):
        pass
    tel.shutdown()  # flushes the batch processor
    text = stream.getvalue()
    assert "handle forge.oven.Temperature" in text
    assert '"service.name": "oven"' in text


def test_extract_from_empty_headers_gives_root_context() -> None:
    tel = Telemetry.from_settings(traces_exporter="memory")
    with tel.tracer.start_as_current_span("handle", context=tel.extract({})):
        pass
    (span,) = tel.span_exporter.get_finished_spans()  # type: ignore[union-attr]
    assert span.parent is None


def test_bad_settings() -> None:
    with pytest.raises(TelemetryError, match="traces_exporter must be one of"):
        Telemetry.from_settings(traces_exporter="jaeger")  # type: ignore[arg-type]
    with pytest.raises(TelemetryError, match="metrics_interval"):
        Telemetry.from_settings(metrics_interval=0)


def test_otlp_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(TelemetryError, match=r'pip install "forge-core\[otlp\]"'):
        Telemetry.from_settings(traces_exporter="otlp", traces_endpoint="http://127.0.0.1:4318")


def test_otlp_exporter_builds_signal_url() -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    tel = Telemetry.from_settings(traces_exporter="otlp", traces_endpoint="http://127.0.0.1:1")
    assert tel.span_exporter._endpoint == "http://127.0.0.1:1/v1/traces"  # type: ignore[union-attr]
    tel.shutdown()  # no spans were made, so nothing is sent
