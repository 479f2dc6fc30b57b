"""The typed plant manifest and the catalog of what installed plugins provide.

The loader turns a validated YAML document into these dataclasses so the runtime never
has to look into raw dicts or guess a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_core.transport.codec import TypeBinding

# Path inside a manifest document: mapping keys and list indexes, e.g. ("components", "oven", "params").
DocPath = tuple[str | int, ...]



@dataclass(frozen=True)
class Issue:
    """A problem before it is given a file and a line (internal; becomes a ManifestProblem)."""

    path: DocPath
    message: str
    line: int | None = None  # set when known up front (YAML duplicates); else looked up by path


DEFAULT_STORAGE_URL = "sqlite:///{plant_dir}/.forge/plant.db"
DEFAULT_PROFILE = "embedded"

# Well-known names and the distribution that provides them, so an "unknown X" problem can
# say what to install instead of only listing what is there.
KNOWN_PROVIDERS: dict[str, dict[str, str]] = {
    "transports": {"mqtt": "forge-mqtt", "kafka": "forge-kafka"},
    # Component types are matched by prefix ("sched.blade_scheduler" -> forge-sched).
    "components": {"sched.": "forge-sched", "mms.": "forge-mms", "b2mml.": "forge-b2mml"},
    # Plugin names; settings sections are keyed by plugin name, so they use this table too.
    "plugins": {
        "mqtt": "forge-mqtt",
        "forge_mqtt": "forge-mqtt",
        "kafka": "forge-kafka",
        "forge_kafka": "forge-kafka",
        "sched": "forge-sched",
        "forge_sched": "forge-sched",
        "mms": "forge-mms",
        "forge_mms": "forge-mms",
        "b2mml": "forge-b2mml",
        "forge_b2mml": "forge-b2mml",
    },
}


def provider_for(kind: str, name: str) -> str | None:
    """The package that provides ``name`` of ``kind`` ("transports", "components", "plugins")."""
    table = KNOWN_PROVIDERS.get(kind, {})
    if kind == "components":
        return next((pkg for prefix, pkg in table.items() if name.startswith(prefix)), None)
    return table.get(name)


@dataclass
class Catalog:
    """What the installed plugins provide; the manifest's semantic checks run against it.

    Each schema is a JSON Schema (any draft jsonschema understands) or None when the
    provider declares no schema, in which case the section is accepted as written.
    """

    transports: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    components: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    tactics: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    plugins: set[str] = field(default_factory=set)


@dataclass
class TransportSpec:
    name: str
    type: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class ComponentSpec:
    name: str
    type: str
    transport: str
    replicas: int = 1
    group: str = ""
    params: dict[str, Any] = field(default_factory=dict)


#: A binding is the codec's own TypeBinding: the manifest hands it to the bus unchanged.
BindingSpec = TypeBinding


@dataclass
class RouteSpec:
    """Forward messages matching ``topics`` (and ``types`` if given) from one transport to another."""

    source: str
    target: str
    topics: list[str]
    types: list[str] | None = None


@dataclass
class StorageSpec:
    url: str
    migrate_on_start: bool = True


@dataclass
class TelemetrySpec:
    traces_exporter: str = "none"
    traces_endpoint: str | None = None
    metrics_exporter: str = "none"
    metrics_endpoint: str | None = None
    metrics_interval: float = 60.0


@dataclass
class RuntimeSpec:
    health_host: str = "127.0.0.1"
    health_port: int | None = 0  # 0 = ephemeral port, None = health server off
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    max_restarts: int = 5
    window: float = 60.0
    #: "single" (one process) or "per_component" (each instance its own OS process, see runtime/processes.py)
    processes: str = "single"
    #: components run inside the supervising parent with ``processes: per_component``
    in_parent: list[str] = field(default_factory=list)


@dataclass
class Manifest:
    """A loaded, validated plant manifest with its profile applied and secrets substituted."""

    path: Path
    plant_dir: Path
    name: str
    description: str
    plugins: list[str]
    local_plugins: list[Path]
    schema_paths: list[Path]
    transports: dict[str, TransportSpec]
    default_transport: str
    components: dict[str, ComponentSpec]
    bindings: list[BindingSpec]
    routes: list[RouteSpec]
    tactics: dict[str, dict[str, Any]]
    storage: StorageSpec
    telemetry: TelemetrySpec
    runtime: RuntimeSpec
    settings: dict[str, dict[str, Any]]
    profile: str | None
    profiles: list[str]
    raw: dict[str, Any]
    # Path -> line of the effective document: the profile's line where it set the value.
    _lines: dict[DocPath, int] = field(default_factory=dict, repr=False, compare=False)

    def line_of(self, path: DocPath) -> int | None:
        """1-based line in :attr:`path` where ``path`` of the effective manifest is written.

        A value the applied profile set points into the profile's section; otherwise into the
        base document. None when the path is not written in the file (a default).
        """
        return self._lines.get(tuple(path))
