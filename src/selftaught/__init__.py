"""selftaught: a harness in which models teach themselves."""

__version__ = "0.1.0"
