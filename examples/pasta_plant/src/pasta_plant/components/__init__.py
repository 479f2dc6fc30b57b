"""The pasta components, one module each."""

from __future__ import annotations

from typing import Any, ClassVar

from forge_core import Component


class PastaComponent(Component):
    """A component whose params fall back to the defaults of its ``params_schema``."""

    params_schema: ClassVar[dict[str, Any] | None] = None

    def param(self, key: str) -> Any:
        if key in self.params:
            return self.params[key]
        return ((self.params_schema or {}).get("properties", {}).get(key) or {}).get("default")
