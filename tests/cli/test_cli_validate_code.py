"""``forge validate`` checks what the code and the manifest name against the registry (issue 11 §7):
message types of bindings, routes, ``@subscribe(types=...)`` and ``publishes``; topic patterns in
``@subscribe`` and in topic params. Each used to validate and then fail silently or crash-loop."""

from __future__ import annotations

import json
from pathlib import Path

PLUGIN = '''
from pydantic import Field

from forge_core import Component, Envelope, Settings, hookimpl, subscribe


class AlarmParams(Settings):
    watch_topic: str = Field("bakery/+/reading", description="where readings arrive")
    topics: dict[str, str] = Field({}, description="more topics")


class Alarm(Component):
    Params = AlarmParams
    publishes = (PUBLISHES,)

    @subscribe(PATTERN, types=[TYPE])
    async def on_reading(self, envelope: Envelope) -> None:
        pass


@hookimpl
def forge_register_components(registry):
    registry.add("bakery.alarm", Alarm)
'''

SCHEMA = {"type": "object"}


def plant(tmp_path: Path, *, type_: str = "bakery.temperature", publishes: str = "bakery.alarm",
          pattern: str = "bakery/+/reading", params: str = "{}", bindings: str = "[]", routes: str = "[]",
          schemas: bool = True) -> Path:
    (tmp_path / "alarm.py").write_text(PLUGIN.replace("PUBLISHES", repr(publishes)).replace(
        "PATTERN", repr(pattern)).replace("TYPE", repr(type_)))
    (tmp_path / "schemas").mkdir(exist_ok=True)
    for name in ("bakery.temperature", "bakery.alarm"):
        (tmp_path / "schemas" / f"{name}.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "plant.yaml").write_text(
        "version: 1\n"
        "plant: {name: bakery}\n"
        "local_plugins: [alarm.py]\n"
        + ("schemas: [schemas]\n" if schemas else "")
        + "transports: {bus: {type: memory}, other: {type: memory}}\n"
        f"bindings: {bindings}\n"
        f"routes: {routes}\n"
        "components:\n"
        f"  alarm: {{type: bakery.alarm, params: {params}}}\n")
    return tmp_path


def problems(invoke, path: Path) -> list[dict]:
    result = invoke("validate", path, "--json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)["problems"]


def test_a_good_plant_validates(invoke, tmp_path: Path) -> None:
    assert problems(invoke, plant(tmp_path)) == []


def test_a_typo_in_subscribe_types_is_caught_with_did_you_mean(invoke, tmp_path: Path) -> None:
    found = problems(invoke, plant(tmp_path, type_="bakery.temprature"))
    assert len(found) == 1 and found[0]["path"] == "components.alarm.type" and found[0]["line"] == 9
    message = found[0]["message"]
    assert "on_reading" in message and "'bakery.temprature'" in message
    assert "did you mean 'bakery.temperature'" in message
    assert "class Alarm at" in message and "alarm.py" in message


def test_a_published_type_without_a_schema_is_caught(invoke, tmp_path: Path) -> None:
    found = problems(invoke, plant(tmp_path, publishes="bakery.alarms"))
    assert [p["path"] for p in found] == ["components.alarm.type"]
    assert "publishes" in found[0]["message"] and "did you mean 'bakery.alarm'" in found[0]["message"]


def test_a_bad_pattern_in_subscribe_is_caught(invoke, tmp_path: Path) -> None:
    found = problems(invoke, plant(tmp_path, pattern="bakery/#/reading"))
    assert len(found) == 1 and "'#' must be a whole level and the last one" in found[0]["message"]


def test_a_bad_topic_pattern_in_params_is_caught(invoke, tmp_path: Path) -> None:
    found = problems(invoke, plant(tmp_path, params='{watch_topic: "acme/#/x", topics: {alerts: "a+/b"}}'))
    assert sorted(p["path"] for p in found) == ["components.alarm.params.topics.alerts",
                                               "components.alarm.params.watch_topic"]


def test_binding_and_route_types_must_have_a_schema(invoke, tmp_path: Path) -> None:
    found = problems(invoke, plant(
        tmp_path,
        bindings="[{topic: t, type: bakery.temprature}, {topic: u, type_field: k, type_map: {a: bakery.nope}}]",
        routes="[{from: bus, to: other, topics: ['#'], types: [bakery.alarm, bakery.alarn]}]"))
    assert sorted(p["path"] for p in found) == ["bindings[0].type", "bindings[1].type_map.a", "routes[0].types[1]"]


def test_a_deleted_schemas_line_is_caught_at_validate_not_at_run_time(invoke, tmp_path: Path) -> None:
    found = problems(invoke, plant(tmp_path, schemas=False,
                                   bindings="[{topic: t, type: bakery.temperature}]"))
    assert sorted({p["path"] for p in found}) == ["bindings[0].type", "components.alarm.type"]
    assert all("no schema registers it" in p["message"] for p in found)


def test_forge_run_refuses_the_plant_too(invoke, tmp_path: Path) -> None:
    result = invoke("run", plant(tmp_path, type_="bakery.temprature"), "--simulate", "1s")
    assert result.exit_code != 0
    assert "bakery.temprature" in result.output


CRASHING = '''
from forge_core import Component, hookimpl


class Crasher(Component):
    async def start(self):
        raise RuntimeError("broken on purpose")


@hookimpl
def forge_register_components(registry):
    registry.add("bakery.crasher", Crasher)
'''


def test_a_component_that_gave_up_makes_forge_run_exit_non_zero(invoke, tmp_path: Path) -> None:
    (tmp_path / "crasher.py").write_text(CRASHING)
    (tmp_path / "plant.yaml").write_text(
        "version: 1\nplant: {name: bakery}\nlocal_plugins: [crasher.py]\ntransports: {bus: {type: memory}}\n"
        "components: {crasher: {type: bakery.crasher}}\nstorage: {migrate_on_start: false}\n"
        "runtime: {health: false, restart: {initial_backoff: 0.05, max_backoff: 0.1, max_restarts: 2, window: 60}}\n")
    for mode in (("--duration", "2s"), ("--simulate", "1m")):
        result = invoke("run", tmp_path, *mode, "--json")
        assert result.exit_code == 1, (mode, result.output)
        summary = json.loads(result.stdout)
        assert summary["components"] == {"crasher": "failed"} and summary["restarts"] == {"crasher": 3}
