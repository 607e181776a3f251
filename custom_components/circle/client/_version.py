"""The client's version: the one source read by its pyproject.toml (hatchling) and `__version__`."""

__version__ = "0.1.0"
