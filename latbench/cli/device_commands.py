"""Commands that touch devices: devices, measure, profile."""
from __future__ import annotations

import time

import click

from ..errors import BadInput
from .app import emit, json_option, main
from .options import (device_extra, device_options, load_arch_arg, make_device, make_protocol,
                      max_elements_option, protocol_options)


@main.command()
@json_option
def devices(as_json):
    """What can measure on this machine and, for what cannot, why.

    \b
    Example:
      latbench devices --json
    """
    from ..devices import describe_devices

    rows = describe_devices()
    lines = []
    for r in rows:
        state = "available" if r["available"] else f"not available: {r['why']}"
        lines.append(f"{r['device']:7} {r['runtime']:7} {state}")
        for p in r.get("phones", []):
            lines.append(f"  {p['serial']:20} {p['state']:12} {p['model'] or '-':16} Android {p['android'] or '-':6} "
                         f"{p['abi'] or '-'}")
    lines.append("")
    lines.append("pixel1 needs adb on PATH, a phone attached with USB debugging, and the TFLite benchmark_model "
                 "binary for android_aarch64 (prebuilt nightly from the TFLite 'performance measurement' page, "
                 "or `bazel build -c opt --config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model`); "
                 "give its path once with --benchmark-model or LATBENCH_BENCHMARK_MODEL.")
    emit(rows, as_json, "\n".join(lines))


@main.command()
@click.argument("arch")
@device_options
@click.option("--serial", default=None, help="Android: adb serial of the phone.")
@protocol_options
@max_elements_option
@json_option
def measure(arch, device_name, runtime, core, batch, benchmark_model, timing, serial, rounds, runs, warmup, precision,
            budget_s, workers, max_elements, as_json):
    """Measure the whole-network latency of ARCH on a device (the DESIGN §5 protocol).

    ARCH: a latbench-arch/1 file, a shipped reference name, or a search's result.json (its final arch).

    \b
    Example:
      latbench measure mobilenetv2 --device cpu --runtime ort --json
      latbench measure latbench-search/result.json --device cpu
    """
    from ..arch import check_size
    from ..measure.whole import measure_arch

    a = load_arch_arg(arch)
    check_size(a, batch or (32 if device_name == "gpu" else 1), max_elements)  # before any device is touched
    dev = make_device(device_name, runtime, core, batch, benchmark_model, serial, timing=timing, workers=workers)
    data = measure_arch(dev, a, make_protocol(rounds, runs, warmup, precision, budget_s), progress=not as_json)
    data.pop("fingerprint_id")
    emit(data, as_json, f"{a.name}: {data['latency_ms']:.3f} ms median (MAD {data['mad_ms']:.3f}, p10 {data['p10_ms']:.3f}, "
                        f"p90 {data['p90_ms']:.3f}, CV {data['cv_pct']:.1f}%, n={data['count']}"
                        f"{_ci_text(data)}) on {dev.name}/{data['fingerprint'].get('runtime')}")


@main.command()
@device_options
@click.option("--space", "space_name", required=True, help="Search space whose ops to profile.")
@click.option("--granularity", type=click.Choice(["block", "layer"]), default="block", show_default=True)
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="Profile store (SQLite). Default: profiles/<device>-<runtime>.db")
@click.option("--serial", "serials", multiple=True, help="Android serial; repeat to profile shards in parallel.")
@click.option("--gpus", default=None, help="gpu: comma-separated GPU indices profiling shards in parallel.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Profile only the first N ops (quick look).")
@click.option("--archs", "n_archs", type=click.IntRange(1), default=None,
              help="Instead of ops: measure N random whole archs (+ per-node profiles) for context/fitted tables.")
@click.option("--extremes", type=click.IntRange(0), default=0, show_default=True,
              help="With --archs: also measure the K fastest and K slowest of 3000 random archs, ranked by the "
                   "isolated table of the ops already in --db (--granularity), so a fitted table also learns "
                   "the ends of the space instead of extrapolating there.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random archs (--archs).")
@protocol_options
@json_option
def profile(device_name, runtime, core, batch, benchmark_model, timing, space_name, granularity, db_path, serials, gpus, limit,
            n_archs, extremes, seed, rounds, runs, warmup, precision, budget_s, workers, as_json):
    """Measure every op of a search space (or N random whole archs) into a resumable profile store.

    Interrupt it at any time (even kill -9): rerunning the same command continues where it stopped.

    \b
    Example:
      latbench profile --device cpu --runtime ort --space proxylessnas --db cpu-ort.db
      latbench profile --device cpu --runtime ort --space proxylessnas --archs 200 --extremes 5 --db cpu-ort.db
      latbench profile --device cpu --timing paired --space proxylessnas --db cpu-ort-paired.db  # noisy host
      latbench profile --device pixel1 --serial A1 --serial B2 --space proxylessnas
    """
    from ..devices import open_devices
    from ..lut.extremes import ranked_extremes
    from ..measure.profiling import arch_items, op_items, profile_items, sample_archs
    from ..spaces import get_space

    space = get_space(space_name)
    if extremes and not n_archs:
        raise BadInput("--extremes: only with --archs (it adds the fastest and slowest archs to the random ones)")
    devs = open_devices(device_name, runtime, core, batch, benchmark_model, timing, serials, gpus, **device_extra())
    if workers and workers > 1:
        if len(devs) > 1:
            raise BadInput("--workers: measures one device in worker processes; not with several --serial/--gpus")
        devs = [make_device(device_name, runtime, core, batch, benchmark_model, serials[0] if serials else None, timing,
                            workers)]
    if db_path is None:
        label = getattr(devs[0], "label", device_name)  # android: the phone model, not "android"
        db_path = f"profiles/{label}-{devs[0].fingerprint().get('runtime', 'default')}.db"
    if n_archs:
        archs = sample_archs(space, n_archs, seed, "train")
        if extremes:
            archs += ranked_extremes(db_path, devs[0].fingerprint(), space, granularity, extremes, seed, archs)
        items = arch_items(archs, role="train")
    else:
        items = op_items(space, granularity, limit)
    t0 = time.perf_counter()
    out = profile_items(devs, items, db_path, make_protocol(rounds, runs, warmup, precision, budget_s),
                        progress=not as_json, node_profiles=bool(n_archs))
    out["wall_s"] = round(time.perf_counter() - t0, 3)
    out.update(space=space.name, granularity=granularity)
    what = (f"{n_archs} random archs" + (f" + {2 * extremes} extreme ones" if extremes else "")) if n_archs \
        else f"ops ({granularity})"
    emit(out, as_json, f"profiled {out['measured']}/{out['items']} items ({what}) of {space.name} into {db_path}; "
                       f"this run measured {out['measured_this_run']} in {out['wall_s']:.1f} s "
                       f"({out['timed_s']:.1f} s inside timed runs)")


def _ci_text(res: dict) -> str:
    return f", {res['rounds']} rounds, level ±{res['ci95_pct']:.2f}% (95% CI)" if res.get("ci95_pct") is not None else ""
