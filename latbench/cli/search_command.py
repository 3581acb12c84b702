"""`latbench search`: hardware-aware architecture search against a LUT (package `search/`)."""
from __future__ import annotations


import click

from .app import emit, json_option, main

_SUMMARY_KEYS = ("algo", "space", "lut", "target_ms", "latency_ms", "relative_error", "indices", "arch",
                 "argmax_latency_ms", "argmax_relative_error", "argmax_indices", "sampled_latency_ms",
                 "expected_latency_ms", "final_entropy_active", "refined", "refine", "proxy_accuracy",
                 "proxy_accuracy_kind", "preset", "measured", "seed", "steps", "world_size", "wall_s", "files")


@main.command()
@click.option("--target-ms", type=float, required=True, help="Latency target T0 in ms (LUT prediction).")
@click.option("--algo", default="tunas", show_default=True,
              help="Search algorithm: tunas | random (tfnas, netadaptv2: not implemented yet).")
@click.option("--space", "space_name", default="proxylessnas", show_default=True,
              help="Search space (`latbench spaces`); TuNAS: proxylessnas, proxylessnas-enlarged, mobilenetv3-like.")
@click.option("--lut", default=None, help="LUT file or shipped table name [default: the space's shipped table, e.g. pixel1-tunas-SPACE].")
@click.option("--steps", type=int, default=None, help="Search steps (weight + RL update pairs) [default: 800].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default="latbench-search", show_default=True, help="Folder for result.json and trajectory.png.")
@click.option("--data", default=None, help="Proxy task: .npz (x, y[, x_valid, y_valid]) or a class-per-subfolder "
              "image folder [default: built-in digits].")
@click.option("--preset", default=None,
              help="TuNAS: proxy = settings measured to land on T0 at the proxy budget (beta -2.0, 1024 latency "
              "samples, SGD); paper = TuNAS's (beta -0.10, one sample, RMSProp, lrs per 256 images, L2 on conv "
              "kernels). Explicit options override it (search/README.md) [default: proxy].")
@click.option("--weight-optimizer", default=None, help="TuNAS: sgd | rmsprop [default: the preset's].")
@click.option("--kernel-sharing/--no-kernel-sharing", default=None,
              help="TuNAS: one depthwise weight + BN for all kernel sizes, cut from the centre (OFA-style) "
              "instead of one per kernel size as TuNAS [default: off].")
@click.option("--measure", is_flag=True,
              help="Measure the final arch on the table's device when it is here (cpu table on this machine, "
              "GPU, attached phone) and record predicted vs measured latency; else say why not.")
@click.option("--reward", default=None, help="TuNAS: absolute | soft | hard (TuNAS / MnasNet) [default: absolute].")
@click.option("--beta", type=float, default=None,
              help="Reward cost weight [default: absolute: the preset's (-2.0 proxy, -0.10 paper); soft/hard -0.07].")
@click.option("--batch-size", type=int, default=None, help="Weight-training batch per process [default: 64].")
@click.option("--width", type=float, default=None, help="Proxy width multiplier [default: 0.25].")
@click.option("--resolution", type=int, default=None, help="Proxy input resolution [default: 32].")
@click.option("--rl-lr", type=float, default=None, help="Base RL learning rate [default: the preset's].")
@click.option("--rl-samples", type=int, default=None,
              help="TuNAS: archs per step and process, each on 1/K of the batch (emulates K shards) [default: 1].")
@click.option("--latency-samples", type=int, default=None,
              help="TuNAS, absolute reward: extra archs per step that price the latency term of the gradient "
              "(0: the sampled arch only, as TuNAS) [default: the preset's, 1024 proxy, 0 paper].")
@click.option("--candidates", type=int, default=None, help="Random search: archs to train [default: 5].")
@click.option("--remat/--no-remat", default=None, help="Rematerialise layers that average several ops [default: on].")
@click.option("--refine/--no-refine", default=None,
              help="TuNAS: optional final latency refinement of the argmax (see search/README.md) [default: off: final arch = argmax].")
@click.option("--threads", type=int, default=None, help="torch threads per process [default: 1].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def search(target_ms, algo, space_name, lut, steps, seed, out, data, preset, weight_optimizer, kernel_sharing, measure,
           reward, beta, batch_size, width, resolution, rl_lr, rl_samples, latency_samples, candidates, remat, refine,
           threads, quiet, as_json):
    """Search SPACE for the most accurate arch at TARGET ms on a LUT (TuNAS or random search).

    Trains a weight-sharing supernet of the space on a small proxy task (built-in: scikit-learn's
    digits) while the controller learns where to spend latency; writes OUT/result.json (final
    arch, indices, latencies, per-step trajectory) and OUT/trajectory.png. Under
    `torchrun --nproc_per_node N -m latbench search ...` the supernet trains with DDP.

    \b
    Example:
      latbench search --target-ms 84
      latbench search --target-ms 84 --space proxylessnas-enlarged --steps 800 --seed 1 --out run1 --json
      latbench search --target-ms 84 --preset paper --steps 20000 --data ./imagenet-folder
      latbench search --target-ms 5.1 --lut cpu-ort-proxylessnas-fitted --measure
      latbench search --target-ms 84 --algo random --candidates 5
    """
    from search.registry import make_config, run_search

    cfg = make_config(algo, target_ms=target_ms, space=space_name, lut=lut, seed=seed, out=out, data=data,
                      remat=remat, progress=not quiet, steps=steps, batch_size=batch_size, width=width,
                      resolution=resolution, threads=threads,
                      # algorithm-specific: an error when the chosen algorithm has no such option
                      reward=reward, beta=beta, rl_lr=rl_lr, rl_samples=rl_samples, latency_samples=latency_samples,
                      candidates=candidates, refine=refine, preset=preset, weight_optimizer=weight_optimizer,
                      kernel_sharing=kernel_sharing)

    def announce(c):
        if hasattr(c, "settings_text"):
            click.echo(c.settings_text(), err=True)

    result = run_search(cfg, measure=measure, on_start=announce)
    if result.get("world_size", 1) > 1 and result.get("files") is None:
        return  # not rank 0: rank 0 reports
    summary = {k: result.get(k) for k in _SUMMARY_KEYS if k in result}
    lines = [f"{result['algo']} in {result['space']} ({result['lut']}): {result['latency_ms']:.3f} ms "
             f"for target {target_ms:g} ms ({100 * result['relative_error']:.2f}% off)"]
    if "argmax_latency_ms" in result:
        lines.append(f"  argmax {result['argmax_latency_ms']:.3f} ms ({100 * result['argmax_relative_error']:.2f}% off)"
                     f"{', refined: ' + str(result['refine']['changes']) + ' decision(s) changed' if result.get('refined') else ''}; "
                     f"sampled average {result['sampled_latency_ms']:.3f} ms")
        lines.append(f"  policy entropy over the argmax's decisions: {result['final_entropy_active']:.2f} nats "
                     "(0 = collapsed; the larger, the more the argmax depends on near-even decisions)")
        tolerance = result["config"]["refine_tolerance"]
        if not result.get("refined") and result["argmax_relative_error"] > tolerance:
            hint = (f"  hint: the argmax is more than {100 * tolerance:g}% off; --refine moves it to the most "
                    "probable arch within that band")
            if result.get("preset") != "proxy" or set(result.get("config_sources", {}).values()) & {"option"}:
                hint += ("; the default --preset proxy, without overriding its values, is the setting measured "
                         "to land at this budget (search/README.md)")
            lines.append(hint)
    lines.append(f"  proxy accuracy {result['proxy_accuracy']:.4f} ({result['proxy_accuracy_kind']})")
    if measure:
        m = result.get("measured") or {}
        if m.get("latency_ms") is not None:
            lines.append(f"  measured {m['latency_ms']:.3f} ms on {m['device']}/{m['runtime']} (MAD {m['mad_ms']:.3f}, "
                         f"CV {m['cv_pct']:.1f}%) vs predicted {m['predicted_ms']:.3f} ms: "
                         f"{m['prediction_error_pct']:+.2f}% prediction error")
            if m.get("note"):
                lines.append(f"  note: {m['note']}")
        else:
            lines.append(f"  not measured: {m.get('why', 'no result')}")
    if result.get("indices"):
        lines.append(f"  indices {result['indices']}")
    if result.get("files"):
        lines.append(f"  wrote {result['files']['result']} and {result['files']['plot']} ({result['wall_s']:.0f} s)")
    emit(summary, as_json, "\n".join(lines))
