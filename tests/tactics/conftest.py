# Real-server fixtures (postgres_url, redis_url, ...). A star import, not `pytest_plugins`, which
# pytest refuses in non-root conftest files.
from __future__ import annotations

from collections.abc import Iterator

import pytest

from forge_core.clock import VirtualClock
from forge_core.testing.fixtures_servers import *  # noqa: F403


@pytest.fixture
def vclock() -> Iterator[VirtualClock]:
    clock = VirtualClock()
    yield clock
    clock.close()
