"""auxbench: a benchmark suite for auxiliary learning."""

__version__ = "0.1.0"
