"""``industry40.mode_api`` under virtual time, through the plant's HTTP app in-process: POST
/simulator/factories/{id}/mode publishes the same ``industry40.factory_mode`` an MQTT client or chaos
does (the factory's one handler applies it); 404 for a factory the plant does not simulate, 400/422
naming the field for a bad body, nothing published then; the PMS's GET /factories at the root is
untouched by the longer prefix. Over real sockets: ``test_live.py``."""

from __future__ import annotations

import httpx
from industry40.components.mode_api import ModeApi

PATH = "/simulator/factories/{}/mode"


def call(plant, method: str, path: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=plant.runtime.http.app), base_url="http://plant"
        ) as client:
            return await client.request(method, path, **kwargs)

    return plant._run(go())


def test_a_mode_posted_over_http_is_the_mode_message_and_the_factory_applies_it(plant40):
    plant = plant40(keep=("factory", "modes"))
    plant.advance(2.0)
    stopped = call(plant, "POST", PATH.format("factory-2"), json={"mode": "stop", "reason": "maintenance"})
    assert stopped.status_code == 202, stopped.text
    assert stopped.json() | {"messageId": None} == {
        "factoryId": "factory-2",
        "mode": "stop",
        "topic": "factory/factory-2/mode",
        "messageId": None,
    }
    [sent] = plant.sent("factory/factory-2/mode", type="industry40.factory_mode")
    assert sent.payload == {"mode": "stop", "reason": "maintenance", "factoryId": "factory-2"}
    plant.advance(1.0)
    factory = plant.component("factory-1")  # instance factory-1 (replica 1) is factory id factory-2
    assert factory.factory_id == "factory-2" and factory.mode == "stop" and factory.stats["modes"] == 1
    beats = factory.stats["beats"]
    plant.advance(5.0)
    assert factory.stats["beats"] == beats, "a stopped factory does not beat"
    assert plant.component("factory-0").mode == "normal"

    assert call(plant, "POST", PATH.format("factory-2"), json={"mode": "recover"}).status_code == 202
    plant.advance(2.0)
    assert factory.mode == "normal" and factory.stats["beats"] > beats


def test_bad_commands_are_refused_naming_what_is_wrong_and_publish_nothing(plant40):
    plant = plant40(keep=("factory", "modes"))
    plant.advance(1.0)
    unknown = call(plant, "POST", PATH.format("factory-9"), json={"mode": "stop"})
    assert unknown.status_code == 404
    assert "factory-9" in unknown.json()["error"] and unknown.json()["factories"] == [
        "factory-1",
        "factory-2",
        "factory-3",
        "factory-4",
    ]
    bad_mode = call(plant, "POST", PATH.format("factory-1"), json={"mode": "explode"})
    assert bad_mode.status_code == 422 and bad_mode.json()["field"] == "mode", bad_mode.text
    assert "explode" in bad_mode.json()["error"]
    missing = call(plant, "POST", PATH.format("factory-1"), json={"reason": "no mode"})
    assert missing.status_code == 422 and "mode" in missing.json()["error"], missing.text
    extra = call(plant, "POST", PATH.format("factory-1"), json={"mode": "stop", "force": True})
    assert extra.status_code == 422 and extra.json()["field"] == "force"
    other = call(plant, "POST", PATH.format("factory-1"), json={"mode": "stop", "factoryId": "factory-3"})
    assert other.status_code == 422 and other.json()["field"] == "factoryId"
    not_json = call(plant, "POST", PATH.format("factory-1"), content=b"stop")
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    array = call(plant, "POST", PATH.format("factory-1"), json=["stop"])
    assert array.status_code == 422
    assert call(plant, "GET", PATH.format("factory-1")).status_code == 405
    assert plant.sent("factory/+/mode", type="industry40.factory_mode") == []
    assert plant.dead_letters == [], "a refused command is the caller's 422, not a dead letter"
    report = plant.component("modes")
    assert isinstance(report, ModeApi) and report.stats == {"accepted": 0, "unknown_factory": 1, "rejected": 6}


def test_the_route_sits_beside_the_pms_factories_not_over_them(plant40):
    plant = plant40(keep=("factory", "pms", "modes"))
    plant.advance(3.0)
    assert plant.runtime.http.mounts() == {"/": "pms-0", "/simulator": "modes"}
    factories = call(plant, "GET", "/factories")
    assert factories.status_code == 200 and {f["id"] for f in factories.json()["factories"]} >= {"factory-2"}
    assert call(plant, "POST", PATH.format("factory-2"), json={"mode": "degraded"}).status_code == 202
