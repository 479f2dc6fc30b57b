"""The plant manifest (``plant.yaml``): load it, check it, and get a typed :class:`Manifest`.

``load_manifest`` is what the runtime uses; ``validate_manifest`` is what ``forge validate``
uses (it checks the base document and every profile and returns the problems instead of raising).
"""

from forge_core.manifest.loader import MANIFEST_FILE, load_manifest, validate_manifest
from forge_core.manifest.model import (
    KNOWN_PROVIDERS,
    BindingSpec,
    Catalog,
    ComponentSpec,
    Manifest,
    RouteSpec,
    RuntimeSpec,
    StorageSpec,
    TelemetrySpec,
    TransportSpec,
    provider_for,
)
from forge_core.manifest.substitute import is_secret_key
from forge_core.manifest.validate import manifest_schema

__all__ = [
    "KNOWN_PROVIDERS",
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
    "is_secret_key",
    "load_manifest",
    "manifest_schema",
    "provider_for",
    "validate_manifest",
]
