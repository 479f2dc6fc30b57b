"""The plant manifest (``plant.yaml``): load it, check it, and get a typed :class:`Manifest`.

``load_manifest`` is what the runtime uses; ``validate_manifest`` is what ``forge validate``
uses (it checks the base document and every profile and returns the problems instead of raising).
"""

from forge_core.manifest.loader import MANIFEST_FILE, load_manifest, validate_manifest
from forge_core.manifest.model import (
    BindingSpec,
    Catalog,
    ComponentSpec,
    Manifest,
    RouteSpec,
    RuntimeSpec,
    StorageSpec,
    TelemetrySpec,
    TransportSpec,
    install_hint,
    plugin_key,
)
from forge_core.manifest.substitute import is_secret_key
from forge_core.manifest.validate import manifest_schema

__all__ = [
    "MANIFEST_FILE",
    "BindingSpec",
    "Catalog",
    "ComponentSpec",
    "Manifest",
    "RouteSpec",
    "RuntimeSpec",
    "StorageSpec",
    "TelemetrySpec",
    "TransportSpec",
    "install_hint",
    "is_secret_key",
    "load_manifest",
    "manifest_schema",
    "plugin_key",
    "validate_manifest",
]
