"""Options several commands share (device, protocol) and turning them into library objects."""
from __future__ import annotations

import click

from ..errors import BadInput


def protocol_options(f):
    """--rounds/--runs/--warmup/--precision/--budget/--workers shared by measure, profile, validate
    and build-lut --relevel."""
    f = click.option("--workers", type=click.IntRange(1), default=None,
                     help="Spread each item's rounds over N fresh worker processes (process-to-process "
                          "variance: memory layout, allocator); default 1, measured in this process.")(f)
    f = click.option("--budget", "budget_s", type=click.FloatRange(0, min_open=True), default=None,
                     help="With --precision: start no new round after this many seconds (default: none).")(f)
    f = click.option("--precision", type=click.FloatRange(0, min_open=True), default=None,
                     help="Keep adding rounds to an item until the 95% CI of its level is within ±P% "
                          "(--rounds is then the minimum; at most 30 rounds, or --budget).")(f)
    f = click.option("--warmup", type=click.IntRange(0), default=None, help="Warm-up runs per round (default 10).")(f)
    f = click.option("--runs", type=click.IntRange(1), default=None, help="Timed runs per round (default 20).")(f)
    f = click.option("--rounds", type=click.IntRange(1), default=None, help="Interleaved rounds (default 3).")(f)
    return f


def device_options(f):
    return _device_options(f, required=True)


def optional_device_options(f):
    """device_options for a command that measures only in one of its modes (build-lut --relevel)."""
    return _device_options(f, required=False)


def _device_options(f, required: bool):
    f = click.option("--timing", type=click.Choice(["plain", "paired"]), default=None,
                     help="cpu: paired = time each block of runs between two runs of a fixed reference and "
                          "scale it to the reference's calibrated speed, for shared, noisy hosts "
                          "(default plain; validate: the table's).")(f)
    f = click.option("--benchmark-model", "benchmark_model", default=None,
                     help="Android: local path of the TFLite benchmark_model binary (remembered).")(f)
    f = click.option("--batch", type=click.IntRange(1), default=None, help="Batch size (cpu/pixel1 1, gpu 32).")(f)
    f = click.option("--core", type=int, default=None, help="cpu: the core to pin to (default: last allowed).")(f)
    f = click.option("--runtime", default=None, help="cpu: ort (default), torch, tflite.")(f)
    f = click.option("--device", "device_name", required=required, help="cpu, gpu or pixel1.")(f)
    return f


def make_protocol(rounds, runs, warmup, precision=None, budget_s=None, **extra):
    from ..measure.protocol import Protocol

    if budget_s is not None and precision is None:
        raise BadInput("--budget: limits the rounds --precision adds; give --precision too")
    p = Protocol(precision=precision, budget_s=budget_s, **extra)
    if rounds is not None:
        p.rounds = rounds
    if runs is not None:
        p.runs = runs
    if warmup is not None:
        p.warmup = warmup
    return p


def make_device(device_name, runtime, core, batch, benchmark_model, serial=None, timing=None, workers=None):
    """The device of the shared --device options (BadInput when it cannot measure here); with
    `workers` > 1, measured in that many worker processes (devices.workers)."""
    from ..devices import open_device

    dev = open_device(device_name, runtime, core, batch, benchmark_model, timing, serial)
    if workers and workers > 1:
        from ..devices.workers import WorkerPoolDevice

        dev = WorkerPoolDevice(dict(name=device_name, runtime=runtime, core=core, batch=batch,
                                    benchmark_model=benchmark_model, timing=timing, serial=serial), workers, dev)
    return dev
