"""``settings.dashboard`` of the manifest, and ``forge run --dashboard [HOST:]PORT``: declared once here."""

from __future__ import annotations

from pydantic import Field

from forge_core.settings import Settings

#: ``forge run`` reads ``--dashboard`` from this variable too; the multi-process parent sets it for
#: its children (``HOST:0``) so each child serves a dashboard of its own (see docs/dashboard.md).
DASHBOARD_ENV = "FORGE_DASHBOARD"


class DashboardSettings(Settings):
    """Where and how the plant's web dashboard is served."""

    enabled: bool | None = Field(
        None, description="serve the dashboard; null: on in the embedded profile (forge run on the real clock), "
                          "off in the others")
    host: str = Field("127.0.0.1", description="interface of a dashboard with a port of its own")
    port: int | None = Field(
        None, ge=0, le=65535,
        description="a port of its own (0: any free port); null: mounted on the runtime's HTTP server "
                    "(runtime.http) under path")
    path: str = Field("/dashboard", pattern=r"^/[A-Za-z0-9._~/-]*$", description="URL path of the dashboard")
    interval: float = Field(1.0, gt=0, le=60, description="seconds between state pushes to each open page (SSE)")
    tail: bool = Field(
        True, description="subscribe '#' on each transport for the live tail, topic rates and forge.status/"
                          "forge.leadership from other processes; false spares a very fast plant that cost")
    tail_per_topic: int = Field(50, ge=1, le=10_000, description="latest messages kept per topic for the live tail")
    tail_topics: int = Field(200, ge=1, le=100_000, description="topics the live tail keeps; more are counted only")
    tail_per_second: int = Field(
        200, ge=1, description="messages per second the tail keeps; beyond it they are counted, not kept (sampling)")
    actions: bool = Field(
        False, description="allow kill/revive of an instance, a failover and clearing dead letters (POST, with "
                           "the token); read-only when false")
    token_env: str = Field("FORGE_DASHBOARD_TOKEN",
                           description="environment variable holding the bearer token actions require")

    def on(self, profile: str | None) -> bool:
        """Whether ``forge run`` serves it for a plant run with ``profile``."""
        return self.enabled if self.enabled is not None else profile == "embedded"


def parse_address(text: str) -> tuple[str | None, int]:
    """``[HOST:]PORT`` of ``--dashboard``: (host or None, port); a clear error otherwise."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--dashboard takes [HOST:]PORT, got {text!r}: {port!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"--dashboard takes [HOST:]PORT, got {text!r}: port {number} is not in 0..65535")
    return (host.strip("[]") or None), number
