"""forge-b2mml."""
