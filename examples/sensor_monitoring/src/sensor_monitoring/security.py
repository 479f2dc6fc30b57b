"""Who may do what on the Kafka cluster of the ``cluster_secure`` profile: one SCRAM principal per process
kind, each allowed only the topics and groups that kind uses (KRaft's StandardAuthorizer refuses the rest).

* ``sensors`` (the simulators, and the MQTT ones' commands): write ``sensor-data``; read ``sensors.control``
  in their groups ``sensors-*`` and ``mqtt_sensors``;
* ``bridge`` (MQTT-only sensors' readings, keyed by sensor id): write ``sensor-data``;
* ``processors`` (the consumer group): read ``sensor-data`` in group ``sensor-processors``; write ``alerts``
  and ``sensor-data.dlq``.

Every principal may also create and describe the topics it uses (each process creates the manifest's
``topics`` on connect) and write ``forge.deadletter.*`` (the bus's dead-letter notices). Passwords come
from the environment: ``KAFKA_SENSORS_PASSWORD``, ``KAFKA_BRIDGE_PASSWORD``, ``KAFKA_PROCESSORS_PASSWORD``
(``password_variables``). A drill or test with :class:`forge_kafka.cluster.KafkaCluster`::

    users = passwords()
    cluster = KafkaCluster(3, security="scram", users=users)
    grant_plant(cluster.grant)
    env.update(client_environment(users))   # KAFKA_*_PASSWORD for forge run --profile cluster_secure

This module imports nothing from forge_kafka: it is the plant's policy, applied with the cluster's ``grant``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

#: principal -> environment variable holding its password (plant.yaml's cluster_secure profile reads them)
PASSWORD_VARIABLES = {"sensors": "KAFKA_SENSORS_PASSWORD", "bridge": "KAFKA_BRIDGE_PASSWORD",
                      "processors": "KAFKA_PROCESSORS_PASSWORD"}
PRODUCE = ("WRITE", "DESCRIBE", "CREATE")
CONSUME = ("READ", "DESCRIBE", "CREATE")

#: cluster.grant(...) keyword sets, in order: the whole policy.
ACLS: list[dict[str, Any]] = [
    {"user": "sensors", "topics": ["sensor-data"], "operations": PRODUCE},
    {"user": "sensors", "topics": ["sensors.control"], "operations": CONSUME},
    {"user": "sensors", "groups": ["sensors-"], "prefixed": True},
    {"user": "sensors", "groups": ["mqtt_sensors"]},
    {"user": "bridge", "topics": ["sensor-data"], "operations": PRODUCE},
    {"user": "processors", "topics": ["sensor-data"], "operations": CONSUME},
    {"user": "processors", "groups": ["sensor-processors"]},
    {"user": "processors", "topics": ["alerts", "sensor-data.dlq"], "operations": PRODUCE},
    *({"user": user, "topics": ["forge.deadletter."], "operations": PRODUCE, "prefixed": True}
      for user in PASSWORD_VARIABLES),
]


def passwords() -> dict[str, str]:
    """A fresh random password per principal (for ``KafkaCluster(users=...)``)."""
    return {user: secrets.token_urlsafe(18) for user in PASSWORD_VARIABLES}


def grant_plant(grant: Callable[..., None]) -> None:
    """Apply :data:`ACLS` with ``grant(user, **acl)`` (``KafkaCluster.grant``)."""
    for acl in ACLS:
        rule = dict(acl)
        grant(rule.pop("user"), **rule)


def client_environment(users: dict[str, str]) -> dict[str, str]:
    """The variables the cluster_secure profile reads, from principal -> password."""
    return {variable: users[user] for user, variable in PASSWORD_VARIABLES.items() if user in users}
