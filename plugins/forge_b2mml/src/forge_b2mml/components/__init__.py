"""The forge_b2mml components: inboxes (drop folder, HTTP, topic) and the exporter."""
