"""Models and pictures. `python -m inference` is the worker; `python -m inference --help` lists the CLI.

This package's __init__ imports nothing heavy: `inference.styles` is torch-free and the bot reads it.
"""
