"""The plugin's component types: ``sparkplug.edge_node`` and ``sparkplug.host``."""
