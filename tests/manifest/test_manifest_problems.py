"""Manifest problems: all reported at once, each with its dotted path and the line it is on."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from forge_core.errors import ManifestError
from forge_core.manifest import Catalog, load_manifest, validate_manifest

DATA = Path(__file__).parent / "data"

CATALOG = Catalog(
    transports={"memory": None},
    components={
        "bakery.oven": {
            "type": "object",
            "properties": {"interval": {"type": "number", "exclusiveMinimum": 0}},
            "additionalProperties": False,
        },
        "bakery.mixer": None,
    },
    tactics={"heartbeat": {"type": "object", "properties": {"period": {"type": "number"}}}},
    sections={"mms": {"type": "object", "properties": {"threshold": {"type": "integer"}}}},
    plugins={"mms"},
)


def write(directory: Path, text: str) -> Path:
    path = directory / "plant.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, **kwargs) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ManifestError) as excinfo:
        load_manifest(path, **{"env": {}, **kwargs})
    return [(p.line, p.path, p.message) for p in excinfo.value.problems]


def test_several_different_problems_are_all_reported_with_their_lines(tmp_path: Path) -> None:
    shutil.copy(DATA / "broken.yaml", tmp_path / "plant.yaml")
    with pytest.raises(ManifestError) as excinfo:
        load_manifest(tmp_path, env={}, catalog=CATALOG)
    found = [(p.line, p.path) for p in excinfo.value.problems]
    assert found == [
        (8, "transports.bus.settings.password"),  # literal secret
        (12, "components.oven.replicas"),  # schema: not an integer
        (13, "components.oven.transport"),  # names no declared transport
        (15, "components.mixer.type"),  # unknown component type
        (17, "telemetry.traces.endpoint"),  # env var not set, no default
        (20, "storage.migrate_on_start"),  # YAML duplicate key
    ]
    by_path = {p.path: p for p in excinfo.value.problems}
    assert "secret written in the file; use ${env:VAR}" in by_path["transports.bus.settings.password"].message
    assert "'zero'" in by_path["components.oven.replicas"].message
    assert "unknown transport 'mqtt'" in by_path["components.oven.transport"].message
    assert "declared transports: bus" in by_path["components.oven.transport"].message
    mixer = by_path["components.mixer.type"].message
    assert "'bakery.mixr'" in mixer and "(did you mean 'bakery.mixer'?)" in mixer
    assert "'OTEL_HOST'" in by_path["telemetry.traces.endpoint"].message
    assert "duplicate key 'migrate_on_start' (first at line 19)" in by_path["storage.migrate_on_start"].message
    # Every problem names the file; str() is what the CLI prints.
    assert all(p.file.endswith("plant.yaml") for p in excinfo.value.problems)
    assert str(excinfo.value).startswith("6 problems in manifest:")
    assert f"{tmp_path}/plant.yaml:12 at components.oven.replicas:" in str(excinfo.value)


def test_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports:
          bus: {type: memory
        components: {}
    """)
    [(line, path, message)] = problems(tmp_path)
    assert path == ""
    assert message.startswith("YAML syntax error")
    assert line == 5  # where PyYAML noticed the unclosed flow mapping


def test_missing_version_is_reported_at_the_root(tmp_path: Path) -> None:
    write(tmp_path, """
        plant: {name: bakery}
        transports: {bus: {type: memory}}
    """)
    [(line, path, message)] = problems(tmp_path)
    assert (line, path) == (1, "version")
    assert "required key 'version' is missing" in message


@pytest.mark.parametrize(("written", "shown"), [("2", "2"), ('"1"', "'1'"), ("1.5", "1.5")])
def test_wrong_version_names_the_bad_value(tmp_path: Path, written: str, shown: str) -> None:
    write(tmp_path, f"""
        plant: {{name: bakery}}
        version: {written}
        transports: {{bus: {{type: memory}}}}
    """)
    [(line, path, message)] = problems(tmp_path)
    assert (line, path) == (2, "version")
    assert f"unsupported manifest version {shown};" in message


def test_missing_required_key_uses_the_parent_line(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports: {bus: {type: memory}}
        components:
          oven:
            replicas: 2
    """)
    assert problems(tmp_path) == [(5, "components.oven.type", "required key 'type' is missing")]


def test_misspelled_key_is_unknown_with_a_suggestion(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports: {bus: {type: memory}}
        components:
          oven:
            type: bakery.oven
            replicsa: 2
    """)
    [(line, path, message)] = problems(tmp_path)
    assert (line, path) == (7, "components.oven.replicsa")
    assert "unknown key 'replicsa' (did you mean 'replicas'?)" in message


def test_unknown_transport_type_mqtt_says_what_to_install(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports:
          bus: {type: memory}
          field:
            type: mqtt
    """)
    [(line, path, message)] = problems(tmp_path, catalog=CATALOG)
    assert (line, path) == (6, "transports.field.type")
    assert "unknown transport type 'mqtt'" in message
    assert "known: memory" in message
    assert "pip install forge-mqtt" in message


def test_unknown_plugin_component_prefix_and_section_name_their_packages(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        plugins: [sched]
        transports: {bus: {type: memory}}
        components:
          scheduler: {type: sched.blade_scheduler}
        settings:
          kafka: {brokers: "k:9092"}
    """)
    found = {path: (line, message) for line, path, message in problems(tmp_path, catalog=CATALOG)}
    assert found["plugins[0]"][0] == 3
    assert "plugin 'sched' is not installed" in found["plugins[0]"][1]
    assert "pip install forge-sched" in found["plugins[0]"][1]
    assert "pip install forge-sched" in found["components.scheduler.type"][1]
    assert "settings section 'kafka'" in found["settings.kafka"][1]
    assert "pip install forge-kafka" in found["settings.kafka"][1]


def test_contributed_schemas_check_params_settings_and_tactics(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports: {bus: {type: memory}}
        components:
          oven:
            type: bakery.oven
            params:
              interval: -1
        tactics:
          heartbeat: {period: soon}
          quorum: {}
        settings:
          mms: {threshold: 0.5}
    """)
    found = {path: (line, message) for line, path, message in problems(tmp_path, catalog=CATALOG)}
    assert found["components.oven.params.interval"][0] == 8
    assert "-1" in found["components.oven.params.interval"][1]
    assert found["tactics.heartbeat.period"][0] == 10
    assert "unknown tactic 'quorum'" in found["tactics.quorum"][1]
    assert found["settings.mms.threshold"][0] == 13
    assert len(found) == 4


def test_structural_checks_run_without_a_catalog(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: Bakery}
        local_plugins: [components/missing.py]
        schemas: [schemas]
        transports: {bus: {type: anything}}
        default_transport: mqtt
        bindings:
          - topic: "plant/#/x"
          - topic: a
            type: t
            type_field: f
        routes:
          - {from: bus, to: kafka, topics: ["#"]}
    """)
    found = {path: line for line, path, _ in problems(tmp_path)}
    assert found == {
        "plant.name": 2,  # pattern
        "local_plugins[0]": 3,
        "schemas[0]": 4,
        "default_transport": 6,
        "bindings[0].topic": 8,  # both: neither type nor type_field, and '#' not last
        "bindings[1].type": 10,
        "routes[0].to": 13,
    }


def test_literal_secret_is_a_problem_but_env_reference_is_not(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports:
          bus:
            type: memory
            settings:
              DB_Password: "${env:DB_PASSWORD}"
              api-key: "${env:API_KEY:-none}"
              access_token: "prefix-${env:TOKEN}"
              token_file: /run/secrets/token
    """)
    [(line, path, message)] = problems(tmp_path, env={"DB_PASSWORD": "x", "TOKEN": "y"})
    assert (line, path) == (9, "transports.bus.settings.access_token")
    assert message.startswith("secret written in the file; use ${env:VAR}")


def test_problem_only_inside_a_profile_is_reported_with_the_profile_line(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports: {bus: {type: memory}}
        components:
          oven: {type: bakery.oven}
        profiles:
          distributed:
            components:
              oven:
                replicas: 0
                transport: kafka
    """)
    assert validate_manifest(tmp_path, env={}) != []
    load_manifest(tmp_path, env={})  # the base alone is fine

    found = [(p.line, p.path, p.message) for p in validate_manifest(tmp_path, env={})]
    assert [(line, path) for line, path, _ in found] == [
        (10, "components.oven.replicas"),
        (11, "components.oven.transport"),
    ]
    assert all(message.startswith("in profile 'distributed': ") for _, _, message in found)

    found_on_load = problems(tmp_path, profile="distributed")
    assert [(line, path) for line, path, _ in found_on_load] == [
        (10, "components.oven.replicas"), (11, "components.oven.transport")]


def test_profile_replacing_a_list_points_into_the_profile(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports: {bus: {type: memory}, wan: {type: memory}}
        routes:
          - {from: bus, to: wan, topics: ["a/#"]}
        profiles:
          distributed:
            routes:
              - from: bus
                topics: ["b/#"]
    """)
    [problem] = validate_manifest(tmp_path, env={})
    # The required `to` is missing from the profile's route (line 9), not the base's (line 5).
    assert (problem.line, problem.path) == (9, "routes[0].to")


def test_unknown_key_inside_a_profile_and_base_problems_are_reported_once(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports: {bus: {type: memory}}
        components:
          oven: {type: bakery.oven, replicas: 0}
        profiles:
          embedded:
            transport: {}
          distributed: {}
    """)
    found = [(p.line, p.path) for p in validate_manifest(tmp_path, env={})]
    assert found == [(5, "components.oven.replicas"), (8, "profiles.embedded.transport")]


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    write(tmp_path, "# nothing yet\n")
    [(_, _, message)] = problems(tmp_path)
    assert "empty" in message
    [problem] = validate_manifest(tmp_path / "nowhere")
    assert "no manifest file" in problem.message


def test_yaml_merge_keys_are_not_duplicates_but_repeated_keys_are(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports:
          bus: &base {type: memory, settings: {a: 1}}
          wan:
            <<: *base
            type: memory
        components:
          oven: {type: bakery.oven}
          oven: {type: bakery.oven}
    """)
    assert [(line, path) for line, path, _ in problems(tmp_path)] == [(10, "components.oven")]


def test_unsafe_yaml_tag_is_refused_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: !!python/object:os.system {name: bakery}
    """)
    [(line, path, message)] = problems(tmp_path)
    assert (line, path) == (2, "")
    assert "python/object" in message


def test_bad_names_and_missing_contributed_params_are_located(tmp_path: Path) -> None:
    write(tmp_path, """
        version: 1
        plant: {name: bakery}
        transports:
          1bus: {type: memory}
        components:
          oven: {type: needs.interval, params: {}}
    """)
    catalog = Catalog(transports={"memory": None}, components={"needs.interval": {"required": ["interval"]}})
    assert problems(tmp_path, catalog=catalog) == [
        (4, "transports.1bus", "invalid name '1bus': must match '^[A-Za-z][A-Za-z0-9_-]*$'"),
        (6, "components.oven.params.interval", "required key 'interval' is missing"),
    ]
