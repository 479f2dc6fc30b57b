"""``runtime.metrics``: the Prometheus ``/metrics`` endpoint's settings, declared once.

The manifest's JSON Schema, the loader's defaults, ``forge run --metrics`` and docs/metrics.md's
table all read :class:`MetricsSettings`.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from forge_core.settings import Settings

__all__ = ["METRICS_ENV", "TARGETS_ENV", "MetricsSettings", "parse_listen"]

#: ``forge run --metrics`` from the environment (the multi-process runner sets ``HOST:0`` for each child)
METRICS_ENV = "FORGE_METRICS"
#: where a process writes its /metrics address as a Prometheus file_sd target group (set for each child)
TARGETS_ENV = "FORGE_METRICS_TARGETS"


class MetricsSettings(Settings):
    """Prometheus text exposition at ``/metrics`` on the runtime's HTTP server (``runtime.http``)."""

    enabled: bool = Field(True, description="Serve /metrics whenever the runtime's HTTP server runs (a component "
                                            "mounted an app, or listen is set). false: no /metrics and no "
                                            "Prometheus reader.")
    listen: str | None = Field(None, pattern=r"^(.+:)?[0-9]{1,5}$",
                               description="[HOST:]PORT: start the runtime's HTTP server there at start-up even "
                                           "if no component mounts an app, so /metrics is always scrapeable; it "
                                           "replaces runtime.http's host and port (one server per process). PORT 0 "
                                           "picks a free port. forge run --metrics sets it.")
    handler_latency: bool = Field(False, description="Record the forge_handle_duration_milliseconds histogram and "
                                                     "forge_messages_handled_total per component even with traces "
                                                     "off: the bus times every handler call (a tracer that samples "
                                                     "nothing; its cost is in docs/metrics.md). With traces on they "
                                                     "are recorded anyway.")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)
        return value


def parse_listen(value: str) -> tuple[str | None, int]:
    """``"9464"`` -> (None, 9464); ``"0.0.0.0:9464"`` -> ("0.0.0.0", 9464); ``"[::1]:9464"`` -> ("::1", 9464)."""
    host, sep, port = str(value).strip().rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535 or (sep and not host):
        raise ValueError(f"expected [HOST:]PORT with PORT 0-65535, got {value!r}")
    return (host.strip("[]") or None) if sep else None, int(port)
