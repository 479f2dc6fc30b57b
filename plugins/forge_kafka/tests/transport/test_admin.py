"""Topic administration: Forge topics to Kafka names and back, wildcard patterns as regexes."""

from __future__ import annotations

import pytest

from forge_kafka import pattern_to_kafka, to_forge, to_kafka

pytestmark = pytest.mark.timeout(120)



def test_topic_mapping_is_slash_to_dot_and_refuses_what_cannot_map() -> None:
    assert to_kafka("plant/m1/reading") == "plant.m1.reading"
    assert to_forge("plant.m1.reading") == "plant/m1/reading"
    assert pattern_to_kafka("plant/+/reading") == r"^plant\.[^.]+\.reading$"
    assert pattern_to_kafka("plant/#") == r"^plant(\..+)?$"
    assert pattern_to_kafka("plant/m1") == "plant.m1"
    for bad in ("plant/m.1", "plant/m 1", "plant//x"):
        with pytest.raises(ValueError, match="cannot"):
            to_kafka(bad)
