"""Core features shipped as built-in plugins, registered through the same hooks as any other."""
