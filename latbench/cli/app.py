"""The `latbench` command group, its error handling and output helpers (commands register on `main`).

Exit codes: 0 ok, 1 failure (device/runtime), 2 bad input (one line on stderr, no traceback).
Heavy imports happen inside the commands that need them so `latbench --help` starts fast.
"""
from __future__ import annotations

import json
import sys

import click

from ..errors import BadInput, DeviceError


class LatbenchGroup(click.Group):
    """Turns BadInput / DeviceError into one-line messages with exit codes 2 / 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BadInput as exc:
            click.echo(f"latbench: error: {exc}", err=True)
            sys.exit(2)
        except DeviceError as exc:
            click.echo(f"latbench: failed: {exc}", err=True)
            sys.exit(1)


def emit(data, as_json: bool, text: str) -> None:
    """Print `data` as JSON on stdout when --json, else the human-readable `text`."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        click.echo(text)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")


@click.group(cls=LatbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="latbench")
def main():
    """latbench: latency lookup tables and on-device benchmarking for hardware-aware NAS.

    \b
    Example:
      latbench macs mobilenetv2
      latbench search --target-ms 84
    """

