"""The plant's telemetry (OpenTelemetry traces and metrics) and its Prometheus ``/metrics`` reader,
built from the manifest's ``telemetry`` and ``runtime.metrics`` sections."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forge_core.manifest import Manifest
    from forge_core.runtime.metrics import PlantMetrics
    from forge_core.telemetry import Telemetry


def make_telemetry(manifest: Manifest) -> tuple[Telemetry | None, PlantMetrics | None]:
    """(telemetry, /metrics reader): None, None when nothing is exported and ``/metrics`` is off (then
    :mod:`forge_core.telemetry` is not even imported)."""
    spec, metrics = manifest.telemetry, manifest.runtime.metrics
    if spec.traces_exporter == "none" and spec.metrics_exporter == "none" and not metrics.enabled:
        return None, None
    from forge_core.telemetry import Telemetry

    plant_metrics: PlantMetrics | None = None
    if metrics.enabled:
        from forge_core.runtime.metrics import PlantMetrics

        plant_metrics = PlantMetrics.for_settings(metrics)
    telemetry = Telemetry.from_settings(
        traces_exporter=spec.traces_exporter, traces_endpoint=spec.traces_endpoint,
        metrics_exporter=spec.metrics_exporter, metrics_endpoint=spec.metrics_endpoint,
        metrics_interval=spec.metrics_interval, service_name=f"forge.{manifest.name}",
        extra_readers=[plant_metrics.reader] if plant_metrics is not None else [],
        instrument_handlers=metrics.enabled and metrics.handler_latency,
    )
    return telemetry, plant_metrics
