"""The typed plant manifest and the catalog of what installed plugins provide.

The loader turns a validated YAML document into these dataclasses so the runtime never
has to look into raw dicts or guess a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_core.manifest.metrics import MetricsSettings
from forge_core.transport.codec import TypeBinding

if TYPE_CHECKING:
    from forge_core.telemetry import Exporter

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

def plugin_key(name: str) -> str:
    """A plugin named as the manifest may name it — entry-point name (``sched``), module or
    distribution name (``forge_sched``, ``forge-sched``) — reduced to one comparable key."""
    key = name.strip().lower().replace("-", "_")
    return key[len("forge_"):] if key.startswith("forge_") and key != "forge_core" else key


def install_hint(plugin: str) -> str:
    """What to install for a plugin that is not installed, derived from the house layout (a plugin
    named ``X`` is the distribution ``forge-X`` with ``[project.entry-points.forge] X = ...``), so
    core names no package."""
    return f"pip install forge-{plugin_key(plugin).replace('_', '-')}"


def owner_of(type_name: str) -> str:
    """The plugin a type name points at by convention: its prefix (``sched.blade_scheduler`` ->
    ``sched``), or the whole name (``mqtt``)."""
    return type_name.split(".", 1)[0]


@dataclass
class Catalog:
    """What the installed plugins provide; the manifest's semantic checks run against it.

    Each schema is a JSON Schema (any draft jsonschema understands) or None when the
    provider declares no schema, in which case the section is accepted as written.
    """

    transports: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    components: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    tactics: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    plugins: set[str] = field(default_factory=set)
    #: Which plugin provides each name: ``providers["components"]["sched.blade_scheduler"] == "sched"``
    #: (kinds: transports, components, tactics, sections).
    providers: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Installed plugins that a plant must list under ``plugins:`` to use (entry-point plugins):
    #: plugin name -> the keys (:func:`plugin_key`) it answers to. Built-ins, a plant's local
    #: plugins and plugins registered in code are always active and are not in here.
    listable: dict[str, set[str]] = field(default_factory=dict)
    #: The pydantic models behind the schemas (kind -> name -> model), for the checks a JSON Schema
    #: cannot express (cross-field rules, a library's own verdict): run at validate time too.
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def inactive_provider(self, kind: str, name: str, listed: list[str] | set[str]) -> str | None:
        """The plugin that provides ``name`` of ``kind`` if the plant does not list it, else None."""
        plugin = self.providers.get(kind, {}).get(name)
        if plugin is None or plugin not in self.listable:
            return None
        wanted = {plugin_key(p) for p in listed if isinstance(p, str)}
        return None if self.listable[plugin] & wanted else plugin


@dataclass
class TransportSpec:
    name: str
    type: str
    settings: dict[str, Any] = field(default_factory=dict)


def instance_names(name: str, replicas: int) -> list[str]:
    """A component's instance names: ``name`` alone, or ``name-0`` ... for ``replicas`` > 1 (the
    one rule the runtime, the process runner, the port map and the AsyncAPI document share)."""
    return [name] if replicas <= 1 else [f"{name}-{i}" for i in range(replicas)]


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
    #: the most connections the plant's engine opens: a pool of this many, no overflow, and a checkout waits for
    #: a free one (30 s at most). None: SQLAlchemy's pool (5, and 10 more on demand). 1 serializes every use of
    #: storage, which a server with a single session needs (``scripts/timescale``'s test server).
    pool_size: int | None = None
    #: False: psycopg prepares no statements (a server whose session outlives a client's connection, or a
    #: transaction-pooling PgBouncer, would find the names taken). PostgreSQL only.
    prepared_statements: bool = True

    def engine_kwargs(self) -> dict[str, Any]:
        """``create_engine_from_url`` arguments for ``pool_size`` and ``prepared_statements``."""
        kwargs: dict[str, Any] = {}
        if self.pool_size is not None:
            kwargs |= {"pool_size": self.pool_size, "max_overflow": 0}
        if not self.prepared_statements and self.url.startswith("postgres"):
            kwargs["connect_args"] = {"prepare_threshold": None}
        return kwargs


@dataclass
class TelemetrySpec:
    traces_exporter: Exporter = "none"
    traces_endpoint: str | None = None
    metrics_exporter: Exporter = "none"
    metrics_endpoint: str | None = None
    metrics_interval: float = 60.0


@dataclass
class RuntimeSpec:
    health_host: str = "127.0.0.1"
    health_port: int | None = 0  # 0 = ephemeral port, None = health server off
    #: the storage probe behind /ready (storage/probe.py): a ping's deadline and the seconds between pings
    health_storage_timeout: float = 1.0
    health_storage_interval: float = 2.0
    #: where ``ctx.http`` / ``ctx.grpc`` listen once a component mounts on them (0 = ephemeral port)
    http_host: str = "127.0.0.1"
    http_port: int = 0
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 0
    #: instance -> its own port (``runtime.http.ports`` with replicated components expanded; manifest/ports.py)
    http_ports: dict[str, int] = field(default_factory=dict)
    grpc_ports: dict[str, int] = field(default_factory=dict)
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    max_restarts: int = 5
    window: float = 60.0
    #: "single" (one process) or "per_component" (each instance its own OS process, see runtime/processes.py)
    processes: str = "single"
    #: components run inside the supervising parent with ``processes: per_component``
    in_parent: list[str] = field(default_factory=list)
    #: ``/metrics`` (Prometheus) on the HTTP server above: docs/metrics.md
    metrics: MetricsSettings = field(default_factory=MetricsSettings)


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
