# Until the forge pytest11 plugin loads them, import the real-server fixtures here.
# (A star import, not `pytest_plugins`, which pytest refuses in non-root conftest files.)
from forge_core.testing.fixtures_servers import *  # noqa: F403
