"""The ``forge`` command line. :func:`build_app` builds it over a set of plugins."""

from forge_core.cli.main import build_app, main

__all__ = ["build_app", "main"]
