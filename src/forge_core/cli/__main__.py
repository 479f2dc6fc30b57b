"""``python -m forge_core.cli``: the ``forge`` command without its console script."""

from forge_core.cli.main import main

main()
