"""SASL/SCRAM listeners and ACLs for :class:`forge_kafka.cluster.KafkaCluster` (``security="scram"``).

Clients and brokers talk SASL_PLAINTEXT with SCRAM-SHA-256 on the client listener (brokers as the
super user ``admin``); KRaft's ``StandardAuthorizer`` checks every request against the ACLs, and a
principal with no ACL for a resource is refused (``allow.everyone.if.no.acl.found=false``). SCRAM
credentials are written into the metadata log when the storage is formatted (``--add-scram``), so
they exist before the first broker starts.

The controller listener stays PLAINTEXT: KRaft cannot authenticate it with SCRAM (the credentials
live in the metadata the controllers serve), so its anonymous principal is a super user. It is not
advertised to clients; a production cluster would put it on a private network or use SASL/PLAIN or
mTLS there.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

__all__ = ["MECHANISM", "ScramSecurity", "grant"]

MECHANISM = "SCRAM-SHA-256"
ADMIN = "admin"


class ScramSecurity:
    """Users (name → password; ``admin``, the super user, is always there) and the broker properties."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = {ADMIN: secrets.token_urlsafe(12), **(users or {})}

    def format_args(self) -> list[str]:
        """``kafka-storage format`` arguments creating every user's SCRAM credential."""
        args: list[str] = []
        for name, password in self.users.items():
            args += ["--add-scram", f"{MECHANISM}=[name={name},password={password}]"]
        return args

    def broker_properties(self, listeners: dict[str, str]) -> dict[str, str]:
        client, controller = listeners["PLAINTEXT"], listeners["CONTROLLER"]
        jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN}" '
                f'password="{self.users[ADMIN]}";')
        return {
            "listeners": f"SASL://{client},CONTROLLER://{controller}",
            "advertised.listeners": f"SASL://{client}",
            "listener.security.protocol.map": "SASL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "SASL",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.sasl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN};User:ANONYMOUS",
            "allow.everyone.if.no.acl.found": "false",
        }

    def client_config(self, user: str | None = None) -> dict[str, str]:
        """librdkafka settings for ``user`` (default: the super user)."""
        name = user or ADMIN
        if name not in self.users:
            raise KeyError(f"KafkaCluster: no SCRAM user {name!r} (users: {sorted(self.users)})")
        return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": MECHANISM,
                "sasl.username": name, "sasl.password": self.users[name]}


def grant(admin: Any, user: str, *, topics: Iterable[str] = (), groups: Iterable[str] = (),
          operations: Iterable[str] = ("READ", "WRITE", "DESCRIBE", "CREATE"), prefixed: bool = False,
          timeout: float = 15.0) -> None:
    """Allow ``user`` the ``operations`` on ``topics`` and READ on consumer ``groups`` (names, or name
    prefixes with ``prefixed``), through ``admin`` (an AdminClient of a super user)."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    pattern = ResourcePatternType.PREFIXED if prefixed else ResourcePatternType.LITERAL
    principal = f"User:{user}"
    bindings = [AclBinding(ResourceType.TOPIC, topic, pattern, principal, "*", AclOperation[op],
                           AclPermissionType.ALLOW) for topic in topics for op in operations]
    bindings += [AclBinding(ResourceType.GROUP, group, pattern, principal, "*", AclOperation.READ,
                            AclPermissionType.ALLOW) for group in groups]
    for future in admin.create_acls(bindings, request_timeout=timeout).values():
        future.result(timeout)
