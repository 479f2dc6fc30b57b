"""runtime.http.ports / runtime.grpc.ports (forge_core.manifest.ports): each problem named by its
field and the instances, what the loader expands, and which port a process binds."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from forge_core.manifest import load_manifest, validate_manifest
from forge_core.manifest.ports import expand_ports, port_for

BASE = """
version: 1
plant: {name: ports}
transports: {bus: {type: memory}}
components:
  pms: {type: test.machine, replicas: 2}
  bridge: {type: test.machine}
  chaos: {type: test.machine}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
runtime:
"""


def found(tmp_path: Path, runtime: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    (tmp_path / "plant.yaml").write_text(BASE.lstrip() + textwrap.indent(textwrap.dedent(runtime).strip(), "  ") + "\n")
    return [(p.path, p.message) for p in validate_manifest(tmp_path, env=env or {})]


def test_a_map_of_distinct_ports_is_valid_and_expanded(tmp_path: Path) -> None:
    runtime = """
    processes: per_component
    in_parent: [chaos]
    http: {port: 8080, ports: {pms: 18101, bridge: 18110}}
    grpc: {ports: {pms-0: 15051, pms-1: 15052}}
    """
    assert found(tmp_path, runtime) == []
    rs = load_manifest(tmp_path, env={}).runtime
    assert rs.http_ports == {"pms-0": 18101, "pms-1": 18102, "bridge": 18110}
    assert rs.grpc_ports == {"pms-0": 15051, "pms-1": 15052}
    assert rs.http_port == 8080  # the parent's (chaos)


def test_two_processes_on_one_port_name_the_field_and_both_instances(tmp_path: Path) -> None:
    [(path, message)] = found(
        tmp_path,
        """
    processes: per_component
    in_parent: [chaos]
    http: {ports: {pms: 18101, bridge: 18102}}
    """,
    )
    assert path == "runtime.http.ports.bridge"
    assert "port 18102 would be bound by 2 processes" in message
    assert "pms-1 (HTTP), bridge (HTTP)" in message and "runtime.http.ports.pms" in message


def test_an_http_port_equal_to_a_grpc_port_collides_too(tmp_path: Path) -> None:
    [(path, message)] = found(
        tmp_path,
        """
    processes: per_component
    in_parent: [chaos]
    http: {ports: {pms-0: 18101}}
    grpc: {ports: {pms-1: 18101}}
    """,
    )
    assert path == "runtime.grpc.ports.pms-1"
    assert "pms-0 (HTTP), pms-1 (gRPC)" in message


def test_a_fixed_base_port_shared_by_every_child_is_a_collision(tmp_path: Path) -> None:
    [(path, message)] = found(
        tmp_path,
        """
    processes: per_component
    in_parent: [chaos]
    grpc: {port: 50051, ports: {pms: 18101}}
    """,
    )
    assert path == "runtime.grpc.port"
    assert "port 50051 would be bound by 2 processes" in message and "bridge (gRPC), the parent (gRPC)" in message


def test_a_fixed_health_port_is_bound_by_every_process_of_a_per_component_plant(tmp_path: Path) -> None:
    [(path, message)] = found(
        tmp_path,
        """
    processes: per_component
    health: {port: 8080}
    """,
    )
    assert path == "runtime.health.port"
    assert "port 8080 would be bound by 4 processes" in message
    assert "pms-0 (health), pms-1 (health), bridge (health), chaos (health)" in message
    assert "set it to 0" in message


def test_a_health_port_equal_to_an_instance_http_port_collides(tmp_path: Path) -> None:
    """With one child the health port alone is no collision, but the child's HTTP port on it is."""
    text = """
    processes: per_component
    in_parent: [pms, chaos]
    health: {port: 18101}
    http: {ports: {bridge: 18101}}
    """
    [(path, message)] = found(tmp_path, text)
    assert path == "runtime.health.port"  # the last field to bind it
    assert "bridge (HTTP)" in message and "bridge (health)" in message and "the parent (health)" in message


def test_a_free_or_absent_health_port_is_no_collision(tmp_path: Path) -> None:
    assert found(tmp_path, "processes: per_component\nhealth: {port: 0}") == []
    assert found(tmp_path, "processes: per_component\nhealth: false") == []
    assert found(tmp_path, "health: {port: 8080}") == []  # one process serves it


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_a_port_out_of_range_names_the_entry(tmp_path: Path, port: int) -> None:
    [(path, message)] = found(tmp_path, f"http: {{ports: {{bridge: {port}}}}}")
    assert path == "runtime.http.ports.bridge"
    assert str(port) in message


def test_replicas_whose_ports_go_past_65535(tmp_path: Path) -> None:
    [(path, message)] = found(tmp_path, "http: {ports: {pms: 65535}}")
    assert path == "runtime.http.ports.pms"
    assert "ports 65535-65536 go past 65535" in message


@pytest.mark.parametrize("key", ["nope", "pms-2", "bridge-0"])
def test_a_key_naming_no_instance_lists_the_instances(tmp_path: Path, key: str) -> None:
    [(path, message)] = found(tmp_path, f"grpc: {{ports: {{{key}: 18101}}}}")
    assert path == f"runtime.grpc.ports.{key}"
    assert f"{key!r} is not a component instance" in message and "pms-0, pms-1, bridge, chaos" in message


def test_an_in_parent_component_has_no_port_of_its_own(tmp_path: Path) -> None:
    [(path, message)] = found(
        tmp_path,
        """
    processes: per_component
    in_parent: [chaos]
    http: {ports: {chaos: 18101}}
    """,
    )
    assert path == "runtime.http.ports.chaos"
    assert "runs in the supervising parent" in message and "runtime.http.port" in message


def test_an_instance_given_twice(tmp_path: Path) -> None:
    [(path, message)] = found(tmp_path, "http: {ports: {pms: 18101, pms-1: 18200}}")
    assert path == "runtime.http.ports.pms-1"
    assert "'pms-1' is given an HTTP port by both 'pms' and 'pms-1'" in message


def test_without_per_component_one_port_in_the_map_twice_is_no_collision(tmp_path: Path) -> None:
    """The single-process plant serves runtime.http.port; the map is for --only processes, which may run
    on hosts of their own (docs/deploy.md), so a port shared by two of them is no error there."""
    assert found(tmp_path, "http: {ports: {pms: 18101, bridge: 18101}}") == []


def test_an_environment_reference_in_the_map_becomes_an_integer(tmp_path: Path) -> None:
    runtime = 'http: {ports: {bridge: "${env:BRIDGE_PORT:-18110}"}}'
    assert found(tmp_path, runtime, env={"BRIDGE_PORT": "18111"}) == []
    (tmp_path / "plant.yaml").write_text(BASE.lstrip() + "  " + runtime + "\n")
    assert load_manifest(tmp_path, env={"BRIDGE_PORT": "18111"}).runtime.http_ports == {"bridge": 18111}
    assert load_manifest(tmp_path, env={}).runtime.http_ports == {"bridge": 18110}


def test_port_for_one_instance_its_own_else_the_default() -> None:
    ports = expand_ports({"pms": 18101, "bridge": 18110}, {"pms": 2, "bridge": 1})
    assert port_for(ports, 0, ["pms-1"]) == 18102
    assert port_for(ports, 0, ["bridge"]) == 18110
    assert port_for(ports, 7, ["other"]) == 7
    assert port_for(ports, 7, ["pms-0", "pms-1"]) == 7  # two instances in one process: one port, the default
    assert port_for(ports, 7, []) == 7  # the whole plant


def test_forge_validate_reports_a_collision(plant_dir) -> None:
    manifest = """
version: 1
plant: {name: ports}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  m: {type: test.machine, params: {interval: 0.2}, replicas: 2}
runtime:
  processes: per_component
  http: {port: 18080}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
"""
    path = plant_dir(manifest)
    done = subprocess.run(
        [sys.executable, "-m", "forge_core.cli", "validate", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "runtime.http.port" in out and "port 18080 would be bound by 2 processes" in out, out
    assert "m-0 (HTTP), m-1 (HTTP)" in out, out


def test_industry40_distributed_with_fixed_pms_ports_as_its_docs_show(tmp_path: Path) -> None:
    """docs/examples/industry40.md: fixed ports for the two PMS replicas, overridable from the environment."""
    import shutil

    import yaml

    plant = Path(__file__).resolve().parents[2] / "examples" / "industry40"
    doc = yaml.safe_load((plant / "plant.yaml").read_text())
    doc["profiles"]["distributed"]["runtime"].update(
        {
            "http": {"ports": {"pms": "${env:PMS_HTTP_PORT:-8101}"}},
            "grpc": {"ports": {"pms": "${env:PMS_GRPC_PORT:-50051}"}},
        }
    )
    (tmp_path / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copytree(plant / "schemas", tmp_path / "schemas")
    assert [str(p) for p in validate_manifest(tmp_path, env={})] == []
    rs = load_manifest(tmp_path, env={}, profile="distributed").runtime
    assert (rs.http_ports, rs.grpc_ports) == ({"pms-0": 8101, "pms-1": 8102}, {"pms-0": 50051, "pms-1": 50052})
    assert (rs.http_host, rs.http_port) == ("127.0.0.1", 0)  # the base's, merged under the profile's ports
    rs = load_manifest(tmp_path, env={"PMS_HTTP_PORT": "18101"}, profile="distributed").runtime
    assert rs.http_ports == {"pms-0": 18101, "pms-1": 18102}
    doc["profiles"]["distributed"]["runtime"]["grpc"] = {"ports": {"pms": "${env:PMS_GRPC_PORT:-8102}"}}
    (tmp_path / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    [problem] = validate_manifest(tmp_path, env={})  # pms-1's REST port is pms-0's gRPC port
    assert problem.path == "runtime.grpc.ports.pms" and "pms-1 (HTTP), pms-0 (gRPC)" in problem.message
