"""The sensor plant's failure drills on a three-broker Apache Kafka cluster, for ``forge drill``.

``forge drill examples/sensor_monitoring --list`` names them; each runs the plant's ``cluster``
profile (a process per component) against its own Kafka cluster, PostgreSQL (and Mosquitto when
the profile speaks MQTT), injects one fault, heals it and reports what was lost, stored twice,
alerted, and how long recovery and the lag's drain took. Registered by the plant's plugin
(``forge_register_drills``); the servers' modules are imported only when a drill runs.
"""

from __future__ import annotations

from forge_core.plugin import DrillScenario


def scenarios() -> list[DrillScenario]:
    from sensor_monitoring.drills.scenarios import BrokerFailure, ConsumerFailure, HighLoad, NetworkPartition

    return [BrokerFailure(), ConsumerFailure(), NetworkPartition(), HighLoad()]
