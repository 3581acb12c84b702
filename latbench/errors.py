"""Errors that the CLI turns into one-line messages and exit codes."""


class BadInput(ValueError):
    """User input (a file, a field, an option) is wrong: exit code 2, one line, no traceback."""


class DeviceError(RuntimeError):
    """A device or runtime failed to measure: exit code 1."""
