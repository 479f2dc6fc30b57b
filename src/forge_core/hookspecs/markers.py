"""The markers of Forge's hooks: ``spec`` declares one (here, in this package), ``hookimpl`` implements it
(in a plugin: ``from forge_core import hookimpl``)."""

from __future__ import annotations

import pluggy

PROJECT = "forge"
#: Marks a hook's specification (pluggy's ``HookspecMarker`` of :data:`PROJECT`).
spec = pluggy.HookspecMarker(PROJECT)
#: The marker plugins use, exported as ``from forge_core import hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT)
