"""Subcommands of ``sagd``: one module each, with ``register(subparsers)`` and ``run(args)``."""
