"""OpenTelemetry for Forge: private tracer/meter providers, the standard instruments, and W3C
trace context carried in envelope headers so one trace follows a message across the bus.

Each :class:`Telemetry` owns its providers (global ones are set only on request), so tests and
multi-plant processes can hold several side by side. When tracing is off, ``enabled`` is False
and callers skip span work entirely on the hot path.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping, Sequence
from typing import IO, Any, Literal

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    InMemoryMetricReader,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from forge_core.errors import ForgeError

__all__ = ["Exporter", "Telemetry", "TelemetryError"]

Exporter = Literal["none", "console", "otlp", "memory"]
_EXPORTERS = ("none", "console", "otlp", "memory")
_OTLP_HINT = 'the otlp exporter needs opentelemetry-exporter-otlp-proto-http: pip install "forge-core[otlp]"'

# Instrument names are part of Forge's public surface (dashboards depend on them).
PUBLISHED = "forge.messages.published"
HANDLED = "forge.messages.handled"
DEAD_LETTERED = "forge.messages.dead_lettered"
RESTARTS = "forge.component.restarts"
FAILOVERS = "forge.failovers"
HANDLE_DURATION = "forge.handle.duration"

_PROPAGATOR = TraceContextTextMapPropagator()  # W3C: headers "traceparent" and "tracestate"


class TelemetryError(ForgeError):
    """Telemetry settings are wrong or an exporter is not installed."""


class Telemetry:
    """Tracer, meter and Forge's instruments over private providers. Build with :meth:`from_settings`."""

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider,
        *,
        span_exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        #: The span exporter in use; an ``InMemorySpanExporter`` with exporter "memory".
        self.span_exporter = span_exporter
        #: The metric reader; an ``InMemoryMetricReader`` with exporter "memory".
        self.metric_reader = metric_reader
        provider = tracer_provider or trace.NoOpTracerProvider()
        self.tracer: Tracer = provider.get_tracer("forge_core")
        self.meter: Meter = meter_provider.get_meter("forge_core")
        self.messages_published: Counter = self.meter.create_counter(
            PUBLISHED, unit="{message}", description="Messages published to a transport"
        )
        self.messages_handled: Counter = self.meter.create_counter(
            HANDLED, unit="{message}", description="Messages handled by a component"
        )
        self.messages_dead_lettered: Counter = self.meter.create_counter(
            DEAD_LETTERED, unit="{message}", description="Messages sent to the dead-letter channel"
        )
        self.component_restarts: Counter = self.meter.create_counter(
            RESTARTS, unit="{restart}", description="Component restarts by the supervisor"
        )
        self.failovers: Counter = self.meter.create_counter(
            FAILOVERS, unit="{failover}", description="Failovers decided by a failover policy"
        )
        self.handle_duration: Histogram = self.meter.create_histogram(
            HANDLE_DURATION, unit="ms", description="Time a handler took for one message"
        )
        self._shut_down = False

    @classmethod
    def from_settings(
        cls,
        traces_exporter: Exporter = "none",
        traces_endpoint: str | None = None,
        metrics_exporter: Exporter = "none",
        metrics_endpoint: str | None = None,
        metrics_interval: float = 60.0,
        service_name: str = "forge",
        *,
        stream: IO[str] | None = None,
        set_global: bool = False,
        extra_readers: Sequence[MetricReader] = (),
        instrument_handlers: bool = False,
    ) -> Telemetry:
        """Build providers from settings (exporter: ``none``, ``console``, ``otlp``, ``memory``).

        ``stream`` is where the console exporters write (default stdout). ``memory`` keeps spans
        in :attr:`span_exporter` and metrics in :attr:`metric_reader`, exported synchronously
        (for tests). ``set_global`` also installs the providers as OpenTelemetry's globals.
        ``extra_readers`` join the meter provider (the runtime's Prometheus reader for ``/metrics``).
        ``instrument_handlers`` with traces off: a tracer that samples nothing, so the bus takes its
        instrumented path (``forge.handle.duration``, ``forge.messages.handled`` per component) and
        no span is recorded or exported.
        """
        for what, value in (("traces_exporter", traces_exporter), ("metrics_exporter", metrics_exporter)):
            if value not in _EXPORTERS:
                raise TelemetryError(f"{what} must be one of {', '.join(_EXPORTERS)}; got {value!r}")
        if metrics_interval <= 0:
            raise TelemetryError(f"metrics_interval must be positive; got {metrics_interval!r}")
        resource = Resource.create({"service.name": service_name})
        out = stream if stream is not None else sys.stdout

        tracer_provider: TracerProvider | None = None
        span_exporter: SpanExporter | None = None
        if traces_exporter != "none":
            tracer_provider = TracerProvider(resource=resource)
            if traces_exporter == "memory":
                span_exporter = InMemorySpanExporter()
                tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
            else:
                if traces_exporter == "console":
                    span_exporter = ConsoleSpanExporter(out=out)
                else:
                    span_exporter = _otlp_span_exporter(traces_endpoint)
                tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        elif instrument_handlers:
            tracer_provider = TracerProvider(resource=resource, sampler=ALWAYS_OFF)

        reader: MetricReader | None = None
        interval_ms = metrics_interval * 1000
        if metrics_exporter == "memory":
            reader = InMemoryMetricReader()
        elif metrics_exporter == "console":
            reader = PeriodicExportingMetricReader(
                ConsoleMetricExporter(out=out), export_interval_millis=interval_ms
            )
        elif metrics_exporter == "otlp":
            reader = PeriodicExportingMetricReader(
                _otlp_metric_exporter(metrics_endpoint), export_interval_millis=interval_ms
            )
        readers = [*([reader] if reader else []), *extra_readers]
        # OpenTelemetry's exit hook (a flush at interpreter exit) holds the provider, its instruments and their
        # callbacks until shutdown(); a plant whose start raised never gets there. Only a pushing exporter has
        # anything to flush at exit: the memory and Prometheus readers are read, not flushed.
        meter_provider = MeterProvider(resource=resource, metric_readers=readers,
                                       shutdown_on_exit=metrics_exporter in ("console", "otlp"))

        telemetry = cls(tracer_provider, meter_provider, span_exporter=span_exporter, metric_reader=reader)
        if set_global:
            if tracer_provider is not None:
                trace.set_tracer_provider(tracer_provider)
            metrics.set_meter_provider(meter_provider)
        return telemetry

    @classmethod
    def disabled(cls) -> Telemetry:
        """No spans, no metric export: the default when nothing is configured."""
        return cls.from_settings()

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded; when False, skip span creation and header injection."""
        return self.tracer_provider is not None

    def inject(self, headers: MutableMapping[str, Any], context: Context | None = None) -> None:
        """Write the current (or given) span's trace context into ``headers``
        (``traceparent``/``tracestate``), to travel in the message envelope."""
        _PROPAGATOR.inject(headers, context=context)

    def extract(self, headers: MutableMapping[str, Any] | dict[str, Any]) -> Context:
        """The trace context carried by ``headers``: use it as the parent of the handle span."""
        return _PROPAGATOR.extract(headers)

    def force_flush(self, timeout_millis: int = 30_000) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(timeout_millis)
        self.meter_provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush pending spans and metrics, then stop the exporters. Idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _otlp_span_exporter(endpoint: str | None) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise TelemetryError(_OTLP_HINT) from None
    return OTLPSpanExporter(endpoint=_signal_url(endpoint, "traces")) if endpoint else OTLPSpanExporter()


def _otlp_metric_exporter(endpoint: str | None) -> Any:
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    except ImportError:
        raise TelemetryError(_OTLP_HINT) from None
    return OTLPMetricExporter(endpoint=_signal_url(endpoint, "metrics")) if endpoint else OTLPMetricExporter()


def _signal_url(endpoint: str, signal: str) -> str:
    """Accept a collector base URL (``http://host:4318``) as well as the full signal URL."""
    from urllib.parse import urlsplit

    return endpoint.rstrip("/") + f"/v1/{signal}" if urlsplit(endpoint).path in ("", "/") else endpoint
