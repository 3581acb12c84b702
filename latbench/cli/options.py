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


def _device_extra(ctx, param, value):
    """Store phone/GPU settings in the context (no parameter of their own on each command)."""
    ctx.meta.setdefault("device_extra", {})[param.name] = value
    return value


def device_options(f):
    return _device_options(f, required=True)


def optional_device_options(f):
    """device_options for a command that measures only in one of its modes (build-lut --relevel)."""
    return _device_options(f, required=False)


def _device_options(f, required: bool):
    f = click.option("--gpu-timing", "gpu_timing", type=click.Choice(["sync", "pipelined"]), default=None,
                     expose_value=False, callback=_device_extra,
                     help="gpu: sync (default) = each batch between two synchronised CUDA events (latency); "
                          "pipelined = K back-to-back batches between one pair of events (throughput-style, "
                          "what TF-NAS's and OFA's GPU tables measure).")(f)
    f = click.option("--no-xnnpack", "xnnpack", flag_value=False, default=True, expose_value=False,
                     callback=_device_extra, help="pixel1/android: run benchmark_model without the XNNPACK delegate.")(f)
    f = click.option("--threads", type=click.IntRange(1), default=None, expose_value=False, callback=_device_extra,
                     help="pixel1/android: benchmark_model --num_threads (default 1).")(f)
    f = click.option("--cpu-mask", "cpu_mask", default=None, expose_value=False, callback=_device_extra,
                     help="pixel1/android: taskset hex mask of the core(s) to pin to (pixel1: 8 = cpu3; "
                          "android: auto = the fastest core).")(f)
    f = click.option("--timing", type=click.Choice(["plain", "paired"]), default=None,
                     help="cpu: paired = time each block of runs between two runs of a fixed reference and "
                          "scale it to the reference's calibrated speed, for shared, noisy hosts "
                          "(default plain; validate: the table's).")(f)
    f = click.option("--benchmark-model", "benchmark_model", default=None,
                     help="Android: local path of the TFLite benchmark_model binary (remembered).")(f)
    f = click.option("--batch", type=click.IntRange(1), default=None, help="Batch size (cpu/pixel1 1, gpu 32).")(f)
    f = click.option("--core", type=int, default=None, help="cpu: the core to pin to (default: last allowed).")(f)
    f = click.option("--runtime", default=None, help="cpu: ort (default), torch, tflite.")(f)
    f = click.option("--device", "device_name", required=required, help="cpu, gpu, pixel1 or android.")(f)
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


def device_extra() -> dict:
    """The phone / GPU settings of the current command (--cpu-mask, --threads, --no-xnnpack, --gpu-timing)."""
    ctx = click.get_current_context(silent=True)
    return dict(ctx.meta.get("device_extra", {})) if ctx is not None else {}


def make_device(device_name, runtime, core, batch, benchmark_model, serial=None, timing=None, workers=None):
    """The device of the shared --device options (BadInput when it cannot measure here); with
    `workers` > 1, measured in that many worker processes (devices.workers)."""
    from ..devices import open_device

    extra = device_extra()
    dev = open_device(device_name, runtime, core, batch, benchmark_model, timing, serial, **extra)
    if workers and workers > 1:
        from ..devices.workers import WorkerPoolDevice

        dev = WorkerPoolDevice(dict(name=device_name, runtime=runtime, core=core, batch=batch,
                                    benchmark_model=benchmark_model, timing=timing, serial=serial, extra=extra),
                               workers, dev)
    return dev


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
