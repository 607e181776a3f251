"""A Circle simulator for tests and the demo (see server.py)."""

from .server import CircleSimulator, SimConfig

__all__ = ["CircleSimulator", "SimConfig"]
