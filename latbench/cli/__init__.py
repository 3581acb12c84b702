"""The `latbench` command line. Each command is thin: parse options, call one library function, print.

Exit codes: 0 ok, 1 failure (device/runtime), 2 bad input (one line on stderr, no traceback).
Heavy imports happen inside the commands that need them so `latbench --help` starts fast.
"""
from . import arch_commands, device_commands, lut_commands, search_command  # noqa: F401  (register commands)
from .app import main

__all__ = ["main"]
