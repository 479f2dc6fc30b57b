"""Manifests that used to crash or hang ``forge validate``, or pass it and then break the run.

Each case is a clear problem naming the file (and the line where one is known): never a
traceback, never a hang, never a value the runtime trips over later.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from forge_core.errors import ManifestError
from forge_core.manifest import Catalog, load_manifest, validate_manifest
from forge_core.manifest.yamldoc import MAX_DEPTH, MAX_MANIFEST_BYTES, MAX_NODES

CATALOG = Catalog(
    transports={
        "memory": None,
        "kafka": {"type": "object", "properties": {
            "bootstrap": {"type": "string"}, "config": {"type": "object"}}, "additionalProperties": False},
    },
    components={
        "bakery.oven": {
            "type": "object",
            "properties": {"interval": {"type": "number", "exclusiveMinimum": 0},
                           "batches": {"type": "integer"}},
            "additionalProperties": False,
        },
    },
    tactics={"leader": {"type": "object", "properties": {"ttl": {"type": "number"}},
                        "additionalProperties": False}},
)

HEAD = """\
version: 1
plant: {name: bakery}
transports: {bus: {type: memory}}
"""


def write(directory: Path, text: str) -> Path:
    path = directory / "plant.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, **kwargs: object) -> list[tuple[int | None, str, str]]:
    found = validate_manifest(path, env={}, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ManifestError):
        load_manifest(path, env={}, **kwargs)  # type: ignore[arg-type]
    return [(p.line, p.path, p.message) for p in found]


# -- YAML that crashed or hung the parser ---------------------------------------------------------

def billion_laughs(levels: int = 9) -> str:
    lines = [HEAD.rstrip("\n"), 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_the_node_limit_with_the_line_of_an_alias(tmp_path: Path) -> None:
    text = billion_laughs()
    assert len(text) < 8_000  # the 7.6 KB file of the report
    (tmp_path / "plant.yaml").write_text(text, encoding="utf-8")
    found = problems(tmp_path, catalog=CATALOG)  # an expansion would exhaust memory or pytest-timeout
    assert len(found) == 1, found
    line, _, message = found[0]
    assert line is not None and line >= 5  # the first alias is on line 5
    assert "aliases" in message and f"{MAX_NODES:,}" in message


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    write(tmp_path, HEAD + "components:\n  oven: &oven {type: bakery.oven, params: {interval: 1.0}}\n"
                           "  oven2: *oven\n")
    manifest = load_manifest(tmp_path, env={}, catalog=CATALOG)
    assert manifest.components["oven2"].params == {"interval": 1.0}


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    write(tmp_path, HEAD + "x: &a [1, *a]\n")
    found = problems(tmp_path)
    assert [(line, message.split(":")[0]) for line, _, message in found] == [(4, "recursive alias")]


def test_non_utf8_bytes_name_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_bytes(HEAD.encode() + b"components: {oven: {type: \xff\xfe}}\n")
    found = problems(tmp_path)
    assert len(found) == 1
    line, _, message = found[0]
    assert line == 4
    assert "not UTF-8" in message and "0xff" in message


@pytest.mark.parametrize("opening,closing", [("[", "]"), ("{a: ", "}")])
def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path, opening: str, closing: str) -> None:
    (tmp_path / "plant.yaml").write_text(HEAD + "x: " + opening * 5000 + "1" + closing * 5000 + "\n")
    found = problems(tmp_path)
    assert len(found) == 1
    line, _, message = found[0]
    assert line == 4 and f"nested deeper than {MAX_DEPTH}" in message


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text(HEAD + "#" * MAX_MANIFEST_BYTES + "\n")
    found = problems(tmp_path)
    assert len(found) == 1 and "limit" in found[0][2] and "bytes" in found[0][2]


# -- numbers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1.0", "1.0e+308", "3.0", "9223372036854775808"])
def test_replicas_must_be_a_sane_integer(tmp_path: Path, value: str) -> None:
    write(tmp_path, HEAD + f"components: {{oven: {{type: bakery.oven, replicas: {value}}}}}\n")
    found = problems(tmp_path, catalog=CATALOG)
    assert [(line, path) for line, path, _ in found] == [(4, "components.oven.replicas")], found


@pytest.mark.parametrize("value,says", [(".inf", "finite"), (".nan", "finite"), ("-.inf", "finite"),
                                        ("1.0e+30", "at most"), ("-1", "minimum")])
def test_intervals_must_be_finite_positive_and_sane(tmp_path: Path, value: str, says: str) -> None:
    write(tmp_path, HEAD + f"components: {{oven: {{type: bakery.oven, params: {{interval: {value}}}}}}}\n")
    found = problems(tmp_path, catalog=CATALOG)
    assert [(line, path) for line, path, _ in found] == [(4, "components.oven.params.interval")], found
    assert says in found[0][2]


def test_integer_params_refuse_integral_floats(tmp_path: Path) -> None:
    write(tmp_path, HEAD + "components: {oven: {type: bakery.oven, params: {batches: 2.0}}}\n")
    found = problems(tmp_path, catalog=CATALOG)
    assert [path for _, path, _ in found] == ["components.oven.params.batches"]
    assert "integer" in found[0][2]


def test_passthrough_numbers_must_be_finite(tmp_path: Path) -> None:
    """librdkafka's keys are its own to judge, but inf/nan are never a setting."""
    write(tmp_path, """\
    version: 1
    plant: {name: bakery}
    transports:
      kafka: {type: kafka, settings: {config: {fetch.wait.max.ms: .nan, linger.ms: 5}}}
    """)
    found = problems(tmp_path, catalog=CATALOG)
    assert [path for _, path, _ in found] == ["transports.kafka.settings.config.fetch.wait.max.ms"]


def test_runtime_restart_numbers_are_checked(tmp_path: Path) -> None:
    write(tmp_path, HEAD + "runtime: {restart: {window: .inf, max_restarts: 5.0}}\n")
    found = problems(tmp_path)
    assert sorted(path for _, path, _ in found) == ["runtime.restart.max_restarts", "runtime.restart.window"]


def test_tactic_key_typo_is_an_error_with_did_you_mean(tmp_path: Path) -> None:
    write(tmp_path, HEAD + "tactics: {leader: {tll: 2}}\n")
    found = problems(tmp_path, catalog=CATALOG)
    assert [path for _, path, _ in found] == ["tactics.leader.tll"]
    assert "did you mean 'ttl'" in found[0][2]


# -- secrets ------------------------------------------------------------------------------------

def test_password_inside_a_url_is_refused_with_the_fix(tmp_path: Path) -> None:
    write(tmp_path, HEAD + 'storage: {url: "postgresql://u:secret@h/db"}\n')
    found = problems(tmp_path)
    assert [(line, path) for line, path, _ in found] == [(4, "storage.url")]
    message = found[0][2]
    assert "password" in message and "${env:STORAGE_URL_PASSWORD}" in message
    assert "postgresql://u:${env:STORAGE_URL_PASSWORD}@h/db" in message


@pytest.mark.parametrize("url", ["postgresql://u:${env:PGPASSWORD}@h/db", "postgresql://u@h/db",
                                 "${env:FORGE_DATABASE_URL}", "sqlite:///{plant_dir}/x.db"])
def test_urls_without_a_literal_password_pass(tmp_path: Path, url: str) -> None:
    write(tmp_path, HEAD + f'storage: {{url: "{url}"}}\n')
    env = {"PGPASSWORD": "x", "FORGE_DATABASE_URL": "sqlite://"}
    assert validate_manifest(tmp_path, env=env) == []


def test_suggested_variable_for_a_dotted_key_is_a_valid_name(tmp_path: Path) -> None:
    write(tmp_path, """\
    version: 1
    plant: {name: bakery}
    transports:
      kafka: {type: kafka, settings: {config: {sasl.password: hunter2}}}
    """)
    found = problems(tmp_path, catalog=CATALOG)
    assert [path for _, path, _ in found] == ["transports.kafka.settings.config.sasl.password"]
    assert "${env:CONFIG_SASL_PASSWORD}" in found[0][2]


def test_an_invalid_variable_name_is_not_accepted_as_a_secret_reference(tmp_path: Path) -> None:
    write(tmp_path, """\
    version: 1
    plant: {name: bakery}
    transports:
      kafka: {type: kafka, settings: {config: {sasl.password: "${env:CONFIG_SASL.PASSWORD}"}}}
    """)
    found = problems(tmp_path, catalog=CATALOG)
    assert found and all(path == "transports.kafka.settings.config.sasl.password" for _, path, _ in found)
    assert any("${env:CONFIG_SASL_PASSWORD}" in message for _, _, message in found)


def test_settings_models_refuse_non_finite_numbers() -> None:
    """The same rule where a plugin builds its settings in code: Settings.load refuses inf and nan."""
    from pydantic import Field

    from forge_core import Settings
    from forge_core.errors import SettingsError

    class Timing(Settings):
        interval: float = Field(1.0, gt=0)

    for bad in (float("inf"), float("nan")):
        with pytest.raises(SettingsError, match="finite"):
            Timing.load({"interval": bad})


def test_a_settings_model_s_own_validators_run_at_validate_time(tmp_path: Path) -> None:
    """A cross-field rule (a pydantic model validator) is invisible to the JSON Schema: forge
    validate runs the model too, so the error names the file, line and field before the plant starts."""
    (tmp_path / "oven.py").write_text(textwrap.dedent('''
        from pydantic import model_validator
        from forge_core import Component, Settings, hookimpl

        class OvenParams(Settings):
            low: float = 1.0
            high: float = 2.0

            @model_validator(mode="after")
            def _ordered(self):
                if self.low > self.high:
                    raise ValueError(f"low {self.low} is above high {self.high}")
                return self

        class Oven(Component):
            Params = OvenParams

        @hookimpl
        def forge_register_components(registry):
            registry.add("bakery.oven", Oven)
    '''))
    path = write(tmp_path, HEAD + "local_plugins: [oven.py]\ncomponents:\n"
                                  "  oven: {type: bakery.oven, params: {low: 5}}\n"
                                  "  fine: {type: bakery.oven, params: {low: 1.5}}\n")
    from forge_core.plugins import get_plugin_manager

    plugins = get_plugin_manager(autoload=False)
    plugins.load_local_plugin(tmp_path / "oven.py")
    found = [(p.line, p.path, p.message) for p in validate_manifest(path, env={}, catalog=plugins.catalog())]
    assert [(line, where) for line, where, _ in found] == [(6, "components.oven.params")], found
    assert "low 5.0 is above high 2.0" in found[0][2]


def test_an_unset_variable_is_one_problem_not_two(tmp_path: Path) -> None:
    """The empty value an unset ${env:...} leaves would also fail its schema ("expected ..., got ''"):
    only the variable's own problem is reported, which says what to set."""
    write(tmp_path, HEAD + 'storage: {url: "${env:PLANT_DB_URL}"}\n')
    found = problems(tmp_path)
    assert [(path, "PLANT_DB_URL" in message) for _, path, message in found] == [("storage.url", True)], found


def test_a_refused_secret_is_not_printed_and_the_message_names_what_is_wrong(tmp_path: Path) -> None:
    """A ``str | None`` secret too short: the message says so (not "expected null", the other
    branch's complaint) and shows ``<secret>``, never the value taken from the environment."""
    from pydantic import Field

    from forge_core.settings import Settings

    class KeyParams(Settings):
        secret_fields = frozenset({"key"})
        key: str | None = Field(None, min_length=16)

    catalog = Catalog(transports={"memory": None}, components={"bakery.signer": KeyParams.json_schema()},
                      models={"components": {"bakery.signer": KeyParams}})
    write(tmp_path, HEAD + 'components:\n  signer: {type: bakery.signer, params: {key: "${env:PLANT_KEY}"}}\n')
    found = validate_manifest(tmp_path, env={"PLANT_KEY": "hunter2-short"}, catalog=catalog)
    assert [(p.path, p.message) for p in found] == [
        ("components.signer.params.key", "<secret> is shorter than 16 characters")]
    assert validate_manifest(tmp_path, env={"PLANT_KEY": "a-long-enough-plant-key"}, catalog=catalog) == []
