"""librdkafka judges its own properties: the passthrough maps of :class:`KafkaSettings` are checked
by building a client from them, with no broker to reach, at ``forge validate`` time.

Why not a schema of our own: librdkafka has hundreds of properties whose ranges change between
versions; the library installed is the authority. A client without ``bootstrap.servers`` connects
to nothing; building and closing one costs about 20 ms.
Only per-property verdicts are reported here (an unknown name, a value out of range or of the
wrong kind); combinations (SASL without a password, say) depend on secrets that may only exist
where the plant runs, and are reported when the transport connects.
"""

from __future__ import annotations

from typing import Any, Literal

import confluent_kafka

_PER_PROPERTY = ("No such configuration property", "Invalid value", "outside allowed range",
                 "Expected bool value", "Invalid value type", "Unsupported value")


def refusal(properties: dict[str, Any], client: Literal["producer", "consumer"]) -> str | None:
    """What librdkafka says of ``properties`` for a ``client``, or None when it accepts them."""
    if not properties:
        return None
    conf = {str(k): v for k, v in properties.items()}
    conf["log_level"] = 0  # no "no bootstrap.servers" warning on stderr
    try:
        if client == "consumer":
            built = confluent_kafka.Consumer({"group.id": "forge-validate", **conf})
            built.close()
        else:
            confluent_kafka.Producer(conf)  # freed when collected; it never connected
    except confluent_kafka.KafkaException as exc:
        message = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
        message = message.strip()
        if any(marker in message for marker in _PER_PROPERTY):
            return f"librdkafka {confluent_kafka.libversion()[0]} refuses it: {message}"
    except (TypeError, ValueError) as exc:  # a value confluent-kafka cannot even hand to librdkafka
        return f"confluent-kafka refuses it: {exc}"
    return None
