"""Every bundled plant's AsyncAPI document, in every profile, is valid against the official
AsyncAPI 3.0.0 JSON Schema (bundled offline), and the validator does catch invalid documents."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from forge_core.asyncapi import build_document, document_errors, official_schema
from forge_core.asyncapi.validate import SCHEMA_FILE

ROOT = Path(__file__).resolve().parents[2]
PLANTS = sorted(p.parent for p in (ROOT / "examples").glob("*/plant.yaml"))


def plant_profiles() -> list[tuple[Path, str | None]]:
    """(plant directory, profile) for every bundled plant and every profile it defines."""
    out: list[tuple[Path, str | None]] = []
    for plant in PLANTS:
        raw = yaml.safe_load((plant / "plant.yaml").read_text(encoding="utf-8"))
        out.extend((plant, profile) for profile in raw.get("profiles") or [None])
    return out


def test_the_bundled_schema_is_the_official_one_with_its_licence():
    schema = official_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema"
    assert "AsyncAPI 3.0.0" in schema["title"]
    licence = (SCHEMA_FILE.parent / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0" in licence


def test_there_are_bundled_plants():
    assert {p.name for p in PLANTS} >= {"pasta_plant", "industry40", "sensor_monitoring", "oee_line"}


def _id(value: object) -> str:
    return value.name if isinstance(value, Path) else str(value)


@pytest.mark.parametrize(("plant", "profile"), plant_profiles(), ids=_id)
def test_every_plant_and_profile_gives_a_valid_complete_document(plant: Path, profile: str | None):
    doc = build_document(plant, profile=profile, env={})
    assert document_errors(doc) == []
    assert doc["asyncapi"] == "3.0.0" and doc["x-forge-profile"] == profile
    # every component that publishes said where: nothing is left without a topic
    assert "x-forge-unplaced" not in doc, doc.get("x-forge-unplaced")
    assert doc["channels"] and doc["operations"]
    assert {op["action"] for op in doc["operations"].values()} == {"send", "receive"}


def _pasta() -> dict:
    return build_document(ROOT / "examples" / "pasta_plant", profile="distributed", env={})


@pytest.mark.parametrize("breakage", ["action", "server", "binding", "ref", "parameter"])
def test_the_validator_catches_what_is_wrong(breakage: str):
    doc = copy.deepcopy(_pasta())
    op = next(iter(doc["operations"].values()))
    channel = next(c for c in doc["channels"].values() if c.get("parameters"))
    if breakage == "action":
        op["action"] = "publish"  # AsyncAPI 2's word
    elif breakage == "server":
        del next(iter(doc["servers"].values()))["protocol"]
    elif breakage == "binding":
        op["bindings"] = {"mqtt": {"qos": 3, "bindingVersion": "0.2.0"}}
    elif breakage == "ref":
        op["channel"] = {"$ref": "#/channels/nowhere"}
    else:
        channel["parameters"] = {}
    assert document_errors(doc), breakage
