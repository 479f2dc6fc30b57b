"""Topic helpers: a value from a message becomes a topic level only if it is one."""

from __future__ import annotations

import re

import pytest

from forge_core.transport import topic_level


@pytest.mark.parametrize("value", ["press-7", "7", 7, "machine_0.a", "é", "$x"[1:], "a" * 200])
def test_plain_values_are_their_own_level(value):
    assert topic_level(value) == str(value)


@pytest.mark.parametrize(("value", "why"), [
    ("a+b", "'+'"), ("#", "'#'"), ("a/b", "'/'"), ("nul\x00", "NUL"), ("", "empty"), ("x" * 201, "200"),
    (1.2345678901234568e29, "'+'"), ("\x1b[2J", "control"), ("$SYS", "'$'"),
])
def test_values_that_would_change_the_topic_are_refused_with_the_reason(value, why):
    with pytest.raises(ValueError, match=f"not a topic level.*{re.escape(why)}"):
        topic_level(value)
