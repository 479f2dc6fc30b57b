pytest_plugins = ["forge_core.testing.fixtures_servers"]
