"""Issue 11 §5, at least once end to end: what the distributed profile promises on paper.

Every MQTT identity of the distributed profile (machines, machine_health and the bridge) keeps a
persistent session (session expiry > 0, clean start off, a client id stable across the process's
restarts) and subscribes with QoS 1, so what reaches the broker while a process is down or
reconnecting is queued for it. The drill that shows the loss without it is forge_mqtt's
``tests/transport/test_replay_resubscribe.py``; ``test_distributed.py`` runs the plant.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_core.runtime import load_plant

PLANT = Path(__file__).resolve().parents[1]


def test_every_mqtt_identity_of_the_distributed_profile_keeps_its_session() -> None:
    mqtt = pytest.importorskip("forge_mqtt")
    _, manifest = load_plant(PLANT, profile="distributed", env={"FORGE_INSTANCE": "machine-0",
                                                               "PASTA_COMMAND_SECRET": "k" * 32})
    found = {name: spec for name, spec in manifest.transports.items() if spec.type == "mqtt"}
    assert set(found) == {"machines", "health", "mqtt"}  # health: machine_health's own broker identity
    for name, spec in found.items():
        settings = mqtt.MqttSettings.load(spec.settings, where=f"transports.{name}.settings")
        assert settings.persistent and not settings.clean, f"{name}: session ends with the connection"
        assert settings.session_expiry >= 3600, f"{name}: a session must outlive a restart and an outage"
        assert settings.qos == 1 and all(q == 1 for q in settings.qos_by_topic.values()), name
        assert "machine-0" in (settings.client_id or ""), f"{name}: client id not stable per instance"
