"""Options several commands share (device, protocol) and turning them into library objects."""
from __future__ import annotations

import click

from ..errors import BadInput


def protocol_options(f):
    """--rounds/--runs/--warmup shared by measure, profile and validate."""
    f = click.option("--warmup", type=click.IntRange(0), default=None, help="Warm-up runs per round (default 10).")(f)
    f = click.option("--runs", type=click.IntRange(1), default=None, help="Timed runs per round (default 20).")(f)
    f = click.option("--rounds", type=click.IntRange(1), default=None, help="Interleaved rounds (default 3).")(f)
    return f


def device_options(f):
    f = click.option("--timing", type=click.Choice(["plain", "paired"]), default=None,
                     help="cpu: paired = time each block of runs between two runs of a fixed reference and "
                          "scale it to the reference's calibrated speed, for shared, noisy hosts "
                          "(default plain; validate: the table's).")(f)
    f = click.option("--benchmark-model", "benchmark_model", default=None,
                     help="Android: local path of the TFLite benchmark_model binary (remembered).")(f)
    f = click.option("--batch", type=click.IntRange(1), default=None, help="Batch size (cpu/pixel1 1, gpu 32).")(f)
    f = click.option("--core", type=int, default=None, help="cpu: the core to pin to (default: last allowed).")(f)
    f = click.option("--runtime", default=None, help="cpu: ort (default), torch, tflite.")(f)
    f = click.option("--device", "device_name", required=True, help="cpu, gpu or pixel1.")(f)
    return f


def make_protocol(rounds, runs, warmup, **extra):
    from ..measure.protocol import Protocol

    p = Protocol(**extra)
    if rounds is not None:
        p.rounds = rounds
    if runs is not None:
        p.runs = runs
    if warmup is not None:
        p.warmup = warmup
    return p


def make_device(device_name, runtime, core, batch, benchmark_model, serial=None, timing=None):
    """The device of the shared --device options (BadInput when it cannot measure here)."""
    from ..devices import open_device

    return open_device(device_name, runtime, core, batch, benchmark_model, timing, serial)


def load_arch_arg(name_or_path):
    """The ARCH argument: a file or a shipped reference, its recorded indices checked against its space."""
    from ..references import resolve_arch
    from ..spaces import check_recorded_indices

    arch = resolve_arch(name_or_path)
    check_recorded_indices(arch)
    return arch


def max_elements_option(f):
    return click.option("--max-elements", type=click.IntRange(1), default=None,
                        help="Refuse networks with a tensor (activations or one layer's weights, batch included) "
                             "over this many elements  [default: $LATBENCH_MAX_ELEMENTS or 2**28]")(f)
