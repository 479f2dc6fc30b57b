"""A stand-in local plugin file: the manifest only checks that it exists."""
