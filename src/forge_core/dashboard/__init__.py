"""The plant's web dashboard (issue 16): ``forge run PLANT --dashboard [HOST:]PORT``.

Served from the plant's own process (Starlette on the runtime's uvicorn, ``pip install
forge-core[http]``): components and instances, transports, leases, heartbeat-monitored sources,
dead letters, checks, a live tail per topic and a panel per plant (``forge_dashboard_panel``),
pushed to the page by server-sent events. See docs/dashboard.md."""

from forge_core.dashboard.panels import Panel, PanelTable, instances_of, status_of
from forge_core.dashboard.service import Dashboard
from forge_core.dashboard.settings import DASHBOARD_ENV, DashboardSettings, parse_address

__all__ = ["DASHBOARD_ENV", "Dashboard", "DashboardSettings", "Panel", "PanelTable", "instances_of", "parse_address",
           "status_of"]
