"""Models and pictures. `python -m inference` is the worker; `python -m inference --help` lists the CLI.

This package's __init__ imports nothing heavy. What the bot must agree on with it (job kinds, catalogs,
photo checks) lives in `contract/`, which both sides import; the bot never imports this package.
"""
