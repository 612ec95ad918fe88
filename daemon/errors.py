"""Errors that stop gumbeld with a message instead of a traceback (exit code 1)."""


class StartupError(Exception):
    """The service cannot start, or cannot go on as configured; the message says why and what to do."""
