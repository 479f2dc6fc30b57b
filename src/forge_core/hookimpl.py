"""The marker plugins use: ``from forge_core import hookimpl``."""

import pluggy

from forge_core.hookspecs import PROJECT

hookimpl = pluggy.HookimplMarker(PROJECT)
