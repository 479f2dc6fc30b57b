"""Loading plant manifests: the typed model, defaults, substitution, profiles."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from forge_core.errors import ManifestError
from forge_core.manifest import Catalog, load_manifest, validate_manifest

DATA = Path(__file__).parent / "data"


def write(directory: Path, text: str) -> Path:
    path = directory / "plant.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(excinfo: pytest.ExceptionInfo[ManifestError]) -> list[tuple[int | None, str, str]]:
    return [(p.line, p.path, p.message) for p in excinfo.value.problems]


MINIMAL = """
    version: 1
    plant: {name: bakery}
    transports:
      bus: {type: memory}
    components:
      oven: {type: bakery.oven}
"""


@pytest.fixture
def good(tmp_path: Path) -> Path:
    plant = tmp_path / "bakery"
    shutil.copytree(DATA / "good", plant)
    return plant


def test_good_manifest_loads_into_typed_model_with_defaults(good: Path) -> None:
    m = load_manifest(good, env={"MQTT_HOST": "broker.local"})

    assert m.path == (good / "plant.yaml").resolve()
    assert m.plant_dir == good.resolve()
    assert (m.name, m.description) == ("bakery", "Ovens and a mixer")
    assert m.plugins == ["mqtt"]
    assert m.local_plugins == [(good / "components" / "oven.py").resolve()]
    assert m.schema_paths == [(good / "schemas").resolve()]
    assert m.transports["mqtt"].settings == {"host": "broker.local", "password": ""}
    assert m.default_transport == "bus"  # the first transport declared
    oven, bridge = m.components["oven"], m.components["bridge"]
    assert (oven.type, oven.transport, oven.replicas, oven.group, oven.params) == (
        "bakery.oven", "bus", 2, "oven", {"interval": 1.5})
    assert (bridge.transport, bridge.replicas, bridge.group, bridge.params) == ("mqtt", 1, "edge", {})
    binding = m.bindings[0]
    assert (binding.topic, binding.type, binding.type_field, binding.key_field) == (
        "plant/+/heartbeat", None, "title", "machineId")
    assert binding.type_map == {"heartbeat": "bakery.heartbeat"}
    route = m.routes[0]
    assert (route.source, route.target, route.topics, route.types) == ("bus", "mqtt", ["plant/#"], None)
    # Defaults of everything not written.
    assert m.storage.url == f"sqlite:///{good.resolve()}/.forge/plant.db"
    assert m.storage.migrate_on_start is True
    assert (m.telemetry.traces_exporter, m.telemetry.metrics_exporter, m.telemetry.metrics_interval) == (
        "none", "none", 60.0)
    rt = m.runtime
    assert (rt.health_host, rt.health_port) == ("127.0.0.1", 0)
    assert (rt.health_storage_timeout, rt.health_storage_interval) == (1.0, 2.0)
    assert (rt.initial_backoff, rt.max_backoff, rt.max_restarts, rt.window) == (1.0, 30.0, 5, 60.0)
    # No `embedded` profile defined -> none applied; the others are listed.
    assert m.profile is None
    assert m.profiles == ["distributed"]
    assert "profiles" not in m.raw
    assert m.line_of(("components", "oven", "replicas")) == 20


def test_the_file_itself_can_be_given(good: Path) -> None:
    assert load_manifest(good / "plant.yaml", env={}).name == "bakery"


def test_catalog_with_everything_installed_accepts_good_manifest(good: Path) -> None:
    catalog = Catalog(
        transports={"memory": None, "mqtt": {"type": "object", "required": ["host"]}},
        components={"bakery.oven": {"type": "object", "properties": {"interval": {"type": "number"}}},
                    "bakery.bridge": None},
        plugins={"mqtt"},
    )
    assert validate_manifest(good, env={}, catalog=catalog) == []


def test_env_substitution_default_and_plant_dir(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports:
          bus:
            type: memory
            settings:
              url: "tcp://${env:BUS_HOST:-localhost}:${env:BUS_PORT}/x"
              token: ${env:BUS_TOKEN:-dev}
        storage:
          url: "sqlite:///{plant_dir}/data/plant.db"
        runtime:
          health: {port: false}
    """)
    m = load_manifest(tmp_path, env={"BUS_PORT": "1883"})
    assert m.transports["bus"].settings == {"url": "tcp://localhost:1883/x", "token": "dev"}
    assert m.storage.url == f"sqlite:///{tmp_path.resolve()}/data/plant.db"
    assert m.runtime.health_port is None

    m = load_manifest(tmp_path, env={"BUS_PORT": "1", "BUS_HOST": "broker", "BUS_TOKEN": "s3cret"})
    assert m.transports["bus"].settings == {"url": "tcp://broker:1/x", "token": "s3cret"}


def test_env_default_may_hold_plant_dir(tmp_path: Path) -> None:
    # The default's own "}" (of {plant_dir}) is not the reference's end: before, the default stopped
    # there and the URL became "sqlite:///{plant_dir/x.db}", a file relative to the working directory.
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports:
          bus: {type: memory}
        storage:
          url: "${env:BAKERY_DB_URL:-sqlite:///{plant_dir}/.forge/bakery.db}"
        runtime:
          health: {port: false}
    """)
    assert load_manifest(tmp_path, env={}).storage.url == f"sqlite:///{tmp_path.resolve()}/.forge/bakery.db"
    set_url = "postgresql://db/bakery"
    assert load_manifest(tmp_path, env={"BAKERY_DB_URL": set_url}).storage.url.endswith("db/bakery")


def test_profile_merge_override_list_replace_null_delete(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        plugins: [a, b]
        transports:
          bus: {type: memory}
        components:
          oven:
            type: bakery.oven
            params: {interval: 1.0, mode: fast}
        profiles:
          distributed:
            plugins: [c]
            components:
              oven:
                replicas: 3
                params: {mode: null}
    """)
    base = load_manifest(tmp_path, env={})
    assert (base.profile, base.plugins, base.components["oven"].replicas) == (None, ["a", "b"], 1)

    m = load_manifest(tmp_path, env={}, profile="distributed")
    assert m.profile == "distributed"
    assert m.plugins == ["c"]  # lists replace
    assert m.components["oven"].replicas == 3  # mappings merge: type kept, replicas added
    assert m.components["oven"].type == "bakery.oven"
    assert m.components["oven"].params == {"interval": 1.0}  # null deletes
    assert m.line_of(("components", "oven", "replicas")) == 15  # the profile's line
    assert m.line_of(("components", "oven", "type")) == 8  # the base's line


def test_embedded_profile_is_applied_by_default(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL + """
    profiles:
      embedded:
        components: {oven: {replicas: 2}}
      distributed: {}
    """)
    m = load_manifest(tmp_path, env={})
    assert (m.profile, m.components["oven"].replicas) == ("embedded", 2)
    assert m.profiles == ["embedded", "distributed"]


def test_unknown_profile_lists_defined_ones(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL + """
    profiles:
      embedded: {}
      distributed: {}
    """)
    with pytest.raises(ManifestError) as excinfo:
        load_manifest(tmp_path, env={}, profile="cloud")
    [(line, path, message)] = problems_of(excinfo)
    assert (line, path) == (8, "profiles")  # MINIMAL ends in a blank line
    assert "unknown profile 'cloud'" in message
    assert "embedded, distributed" in message


def test_profile_can_switch_health_off_and_replace_a_transport(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL + """
    profiles:
      distributed:
        transports:
          bus: {type: mqtt, settings: {host: broker}}
        runtime:
          health: false
    """)
    m = load_manifest(tmp_path, env={}, profile="distributed")
    assert m.transports["bus"].type == "mqtt"
    assert m.transports["bus"].settings == {"host": "broker"}
    assert m.runtime.health_port is None


def test_port_from_the_environment_becomes_an_integer(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports:
          bus:
            type: memory
            settings: {port: "${env:BUS_PORT:-1883}", admin_port: "${env:ADMIN}", name: "${env:BUS_PORT:-1}",
                       url: "x:${env:BUS_PORT:-1}"}
    """)
    m = load_manifest(tmp_path, env={"ADMIN": "9000"})
    assert m.transports["bus"].settings == {"port": 1883, "admin_port": 9000, "name": "1", "url": "x:1"}


def test_runtime_processes_and_in_parent(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    assert (load_manifest(tmp_path).runtime.processes, load_manifest(tmp_path).runtime.in_parent) == ("single", [])
    write(tmp_path, MINIMAL + """
    runtime: {processes: per_component, in_parent: [oven]}
    profiles:
      one: {runtime: {processes: single}}
    """)
    m = load_manifest(tmp_path)
    assert (m.runtime.processes, m.runtime.in_parent) == ("per_component", ["oven"])
    assert load_manifest(tmp_path, profile="one").runtime.processes == "single"
    write(tmp_path, MINIMAL + """
    runtime: {processes: forked, in_parent: [fridge]}
    """)
    with pytest.raises(ManifestError) as excinfo:
        load_manifest(tmp_path)
    messages = [message for _, _, message in problems_of(excinfo)]
    assert any("forked" in m for m in messages), messages
    assert any("'fridge' is not a component; components: oven" in m for m in messages), messages


def test_the_storage_probe_settings_are_read_and_a_non_positive_one_refused(tmp_path: Path) -> None:
    plant = "version: 1\nplant: {name: bakery}\ntransports: {bus: {type: memory}}\n"
    write(tmp_path, plant + "runtime: {health: {port: false, storage_timeout: 0.5, storage_interval: 10}}\n")
    rt = load_manifest(tmp_path).runtime
    assert (rt.health_port, rt.health_storage_timeout, rt.health_storage_interval) == (None, 0.5, 10.0)
    write(tmp_path, plant + "runtime: {health: {storage_timeout: 0}}\n")
    with pytest.raises(ManifestError) as excinfo:
        load_manifest(tmp_path)
    assert [path for _, path, _ in problems_of(excinfo)] == ["runtime.health.storage_timeout"]
