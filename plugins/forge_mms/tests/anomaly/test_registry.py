"""Rule types: the built-ins, a plugin's own, and what validation says about a typo."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from forge_core import PluginError, SettingsError
from pydantic import Field

from forge_mms.anomaly import Verdict, Window, register_rule_type, rule_types
from forge_mms.settings import RuleSettings, SensorProcessorParams


class AboveMeanSettings(RuleSettings):
    """``type: test_above_mean``: a reading more than ``margin`` above the mean of all before it."""

    type: Literal["test_above_mean"]
    margin: float = Field(gt=0, description="how far above the mean")


class AboveMean:
    history = 100

    def __init__(self, settings: AboveMeanSettings) -> None:
        self.settings = settings

    def fresh(self) -> Any:
        return []

    def judge(self, state: list[float], reading: Any, held: Any) -> Verdict | None:
        mean = sum(state) / len(state) if state else None
        state.append(reading.value)
        if mean is None:
            return None
        hot = reading.value > mean + self.settings.margin
        return Verdict("warning" if hot else None, reading.value, mean + self.settings.margin,
                       Window(reading.seq, reading.seq, 0.0), "above the mean" if hot else "")


def test_the_built_ins():
    assert {"threshold", "rms", "baseline", "stuck", "rate_of_change"} <= set(rule_types())


@pytest.fixture
def restored():
    """The registry as it was before the test (a registered type would outlive it otherwise)."""
    from forge_mms.anomaly import registry
    from forge_mms.settings import RULE_SETTINGS

    types, settings = dict(registry._TYPES), dict(RULE_SETTINGS)
    yield
    registry._TYPES.clear()
    registry._TYPES.update(types)
    RULE_SETTINGS.clear()
    RULE_SETTINGS.update(settings)
    registry._rebuild_params()


def test_a_plugin_adds_a_rule_type_and_validation_knows_it(judge, restored):
    rule = {"name": "jump", "type": "test_above_mean", "kind": "temperature", "clear_after": 1}
    with pytest.raises(SettingsError, match="unknown or missing rule type"):
        SensorProcessorParams.load({"rules": [{**rule, "margin": 5.0}]})
    register_rule_type("test_above_mean", AboveMeanSettings, AboveMean)
    register_rule_type("test_above_mean", AboveMeanSettings, AboveMean)  # again, the same: harmless
    assert "test_above_mean" in SensorProcessorParams.json_schema()["properties"]["rules"]["items"]["properties"][
        "type"]["enum"]
    with pytest.raises(SettingsError, match=r"rules\.0\.test_above_mean\.margin"):
        SensorProcessorParams.load({"rules": [rule]})
    assert judge({**rule, "margin": 5.0}, [10, 10, 20, 10]) == [(3, "raised", "warning"), (4, "cleared", "warning")]


def test_a_second_model_under_a_taken_name_is_refused(restored):
    class Other(RuleSettings):
        type: Literal["threshold"]

    with pytest.raises(PluginError, match="registered twice"):
        register_rule_type("threshold", Other, AboveMean)


def test_the_model_must_say_its_type(restored):
    with pytest.raises(PluginError, match=r"type must be Literal\['nameless'\]"):
        register_rule_type("nameless", AboveMeanSettings, AboveMean)


def test_validation_names_the_rule_and_the_key():
    with pytest.raises(SettingsError) as caught:
        SensorProcessorParams.load({"rules": [
            {"name": "a", "type": "treshold", "kind": "temperature"},
            {"name": "b", "type": "rms", "kind": "vibration", "limit": 1.0, "windw": 5}]}, where="params")
    problems = dict(caught.value.problems)
    assert "unknown or missing rule type" in problems["params.rules.0"]
    assert "unknown key" in problems["params.rules.1.rms.windw"]
    with pytest.raises(SettingsError, match="rule names must be unique: a more than once"):
        SensorProcessorParams.load({"rules": [{"name": "a", "type": "stuck", "kind": None}] * 2})
