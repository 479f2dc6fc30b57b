"""The ``forge`` command line, and the public extension points for a plugin's own commands:
register a typer app through ``forge_register_commands``; reuse :func:`duration_option` for
``--duration``-style options and :func:`run_until_signalled` to run a plant until Ctrl-C."""

from forge_core.cli.durations import duration_option, format_duration, parse_duration
from forge_core.cli.main import build_app, main
from forge_core.runtime.signals import run_until_signalled

__all__ = ["build_app", "duration_option", "format_duration", "main", "parse_duration", "run_until_signalled"]
