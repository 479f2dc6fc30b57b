"""The pasta components, one module each (params: ``pasta_plant.settings``)."""
