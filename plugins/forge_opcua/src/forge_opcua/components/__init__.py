"""The components of forge_opcua: one module per component type."""
