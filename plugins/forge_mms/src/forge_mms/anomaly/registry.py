"""Rule types: the built-ins and those plugins add.

A rule type is a settings model (a :class:`~forge_mms.settings.RuleSettings` subclass whose ``type`` is
``Literal["<name>"]``) and a factory ``(settings) -> Rule`` (:class:`~forge_mms.anomaly.verdicts.Rule`).
A plugin adds one by calling :func:`register_rule_type` when its plugin module is imported (before a
manifest is validated, like the ``forge_register_*`` hooks it sits beside)::

    # my_plugin/plugin.py
    from forge_mms.anomaly import register_rule_type
    register_rule_type("spectral", SpectralRuleSettings, SpectralRule, description="FFT band energy")

The params model of ``mms.sensor_processor`` is rebuilt on each registration, so ``forge validate``
checks ``rules:`` items of the new type against its model (a typo in a key or a type names its path),
and the docs table comes from the model as for the built-ins.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from forge_core import PluginError

from forge_mms.anomaly.baseline import BaselineRule
from forge_mms.anomaly.rate_of_change import RateOfChangeRule
from forge_mms.anomaly.rms import RmsRule
from forge_mms.anomaly.stuck import StuckRule
from forge_mms.anomaly.threshold import ThresholdRule
from forge_mms.anomaly.verdicts import Rule
from forge_mms.settings import RULE_SETTINGS, RuleSettings, SensorProcessorParams

__all__ = ["RuleType", "build_rule", "register_rule_type", "rule_types"]


@dataclass(frozen=True)
class RuleType:
    name: str
    settings: type[RuleSettings]
    factory: Callable[[Any], Rule]
    description: str = ""


_TYPES: dict[str, RuleType] = {}


def register_rule_type(name: str, settings: type[RuleSettings], factory: Callable[[Any], Rule], *,
                       description: str = "") -> RuleType:
    """Make ``type: <name>`` a rule of ``mms.sensor_processor``; refused (PluginError) if the name is taken by
    another model or the model does not fit."""
    if not (isinstance(settings, type) and issubclass(settings, RuleSettings)):
        raise PluginError(f"rule type {name!r}: settings must subclass forge_mms.settings.RuleSettings, "
                          f"got {settings!r}")
    annotation = settings.model_fields["type"].annotation
    if typing.get_origin(annotation) is not typing.Literal or typing.get_args(annotation) != (name,):
        raise PluginError(f"rule type {name!r}: {settings.__name__}.type must be Literal[{name!r}], got {annotation!r}")
    known = _TYPES.get(name)
    if known is not None and (known.settings is not settings or known.factory is not factory):
        raise PluginError(f"rule type {name!r} is registered twice ({known.settings.__name__} and "
                          f"{settings.__name__}); register yours under another name")
    entry = _TYPES[name] = RuleType(name, settings, factory, description or (settings.__doc__ or "").strip())
    if RULE_SETTINGS.get(name) is not settings:
        RULE_SETTINGS[name] = settings
        _rebuild_params()
    return entry


def _rebuild_params() -> None:
    """The processor's params model reads RULE_SETTINGS when built: build it again, forget its cached schema."""
    SensorProcessorParams.model_rebuild(force=True)
    if "_forge_json_schema" in SensorProcessorParams.__dict__:
        type.__delattr__(SensorProcessorParams, "_forge_json_schema")


def rule_types() -> dict[str, RuleType]:
    return dict(_TYPES)


def build_rule(settings: RuleSettings) -> Rule:
    """The rule for one ``rules:`` item (its type registered)."""
    try:
        entry = _TYPES[settings.type]
    except KeyError:
        raise PluginError(f"rule {settings.name!r}: no rule type {settings.type!r}; known: "
                          f"{', '.join(sorted(_TYPES))}") from None
    return entry.factory(settings)


register_rule_type("threshold", RULE_SETTINGS["threshold"], ThresholdRule,
                   description="the reading against a warning and a critical level")
register_rule_type("rms", RULE_SETTINGS["rms"], RmsRule, description="RMS of the last window readings above a limit")
register_rule_type("baseline", RULE_SETTINGS["baseline"], BaselineRule,
                   description="EWMA z-score: deviation from an exponentially weighted mean and variance")
register_rule_type("stuck", RULE_SETTINGS["stuck"], StuckRule,
                   description="the last window readings within epsilon of each other")
register_rule_type("rate_of_change", RULE_SETTINGS["rate_of_change"], RateOfChangeRule,
                   description="change per second between consecutive readings above a limit")
