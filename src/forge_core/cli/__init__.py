"""The ``forge`` command line, and the public extension points for a plugin's own commands:
register a typer app through ``forge_register_commands``; reuse :func:`duration_option` for
``--duration``-style options and :func:`run_until_signalled` to run a plant until Ctrl-C.

The names are imported on first use: the ``forge`` console script imports this package before
``forge_core.cli.main``, and ``forge --help`` must not pay for asyncio (docs/performance.md).
"""

from typing import TYPE_CHECKING

from forge_core._lazy import lazy_exports

if TYPE_CHECKING:
    from forge_core.cli.durations import duration_option, format_duration, parse_duration
    from forge_core.cli.main import build_app, main
    from forge_core.runtime.signals import run_until_signalled

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "build_app": "forge_core.cli.main:build_app",
        "main": "forge_core.cli.main:main",
        "duration_option": "forge_core.cli.durations:duration_option",
        "format_duration": "forge_core.cli.durations:format_duration",
        "parse_duration": "forge_core.cli.durations:parse_duration",
        "run_until_signalled": "forge_core.runtime.signals:run_until_signalled",
    },
)

__all__ = ["build_app", "duration_option", "format_duration", "main", "parse_duration", "run_until_signalled"]
