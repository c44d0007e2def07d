"""The errors that reach the user as one line (``auxbench.cli`` turns them into exit codes)."""


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names it and the valid choices."""
