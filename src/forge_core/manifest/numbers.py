"""Numbers in a manifest: finite and of a sane size, wherever they sit (JSON Schema cannot say "finite")."""

from __future__ import annotations

import math
from typing import Any

from forge_core.manifest.model import DocPath, Issue

#: Largest magnitude of a float a manifest may hold: 1e12 seconds is over 31,000 years, so no
#: interval, timeout or amount needs more, and 1e30 s overflows the event loop's timers.
MAX_FLOAT = 1e12
#: Integers are 64-bit signed, what every store, wire format and C library behind Forge holds.
INT64 = 2**63


def number_problem(value: Any) -> str | None:
    """What is wrong with a number no schema can refuse (JSON Schema cannot say "finite"), or None."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{value} is not a finite number; write a number (inf and nan are not values)"
        if abs(value) > MAX_FLOAT:
            return f"{value:g} is out of range: numbers in a manifest are at most {MAX_FLOAT:g} in magnitude"
    elif isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        return f"{value} is out of range: integers in a manifest are 64-bit (-2**63 to 2**63-1)"
    return None


def number_issues(doc: Any, path: DocPath = ()) -> list[Issue]:
    """Every number in the document, schema or not (librdkafka passthrough keys included), must
    be finite and sane: one check here instead of a bound on each of hundreds of fields."""
    issues: list[Issue] = []
    stack: list[tuple[DocPath, Any]] = [(path, doc)]
    while stack:
        here, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*here, key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend(((*here, index), item) for index, item in enumerate(value))
        elif (problem := number_problem(value)) is not None:
            issues.append(Issue(here, problem))
    return issues
