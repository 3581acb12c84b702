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
              help="Search algorithm: tunas | tfnas | netadaptv2 | random.")
@click.option("--space", "space_name", default=None,
              help="Search space (`latbench spaces`) [default: proxylessnas; tfnas: tfnas; netadaptv2: netadaptv2].")
@click.option("--lut", default=None, help="LUT file or shipped table name [default: the space's shipped table, e.g. pixel1-tunas-SPACE].")
@click.option("--steps", type=int, default=None, help="Search steps (weight + RL update pairs) [default: 800; TuNAS on proxylessnas-enlarged "
              "and mobilenetv3-like 1200].")
@click.option("--epochs", type=float, default=None,
              help="Budget in passes over the training split by all processes (instead of --steps).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", default="latbench-search", show_default=True, help="Folder for result.json and trajectory.png.")
@click.option("--data", default=None, help="Proxy task: .npz (x, y[, x_valid, y_valid]) or a class-per-subfolder "
              "image folder (ImageNet layout; streamed by --workers DataLoader workers) [default: built-in digits].")
@click.option("--valid-data", default=None, help="Image folder with the same classes as --data for the held-out "
              "(controller / architecture) steps [default: a fixed split of --data, see --holdout].")
@click.option("--holdout", type=float, default=None, help="Held-out split of the training data: a fraction "
              "(per class) or a number of images (TuNAS on ImageNet: 50046) [default: 0.2].")
@click.option("--workers", type=int, default=None,
              help="DataLoader workers per process for image folders [default: min(4, CPU cores)].")
@click.option("--weight-optimizer", default=None, help="TuNAS: sgd | rmsprop [default: the preset's].")
@click.option("--kernel-sharing/--no-kernel-sharing", default=None,
              help="TuNAS: one depthwise weight + BN for all kernel sizes, cut from the centre (OFA-style) "
              "instead of one per kernel size as TuNAS [default: off].")
@click.option("--measure", is_flag=True,
              help="Measure the final arch on the table's device when it is here (cpu table on this machine, "
              "GPU, attached phone) and record predicted vs measured latency; else say why not.")
@click.option("--reward", default=None, help="TuNAS: absolute | soft | hard (TuNAS / MnasNet) [default: absolute].")
@click.option("--beta", type=float, default=None,
              help="Reward cost weight [default: absolute: the preset's (-3.0 proxy, -0.10 paper); soft/hard -0.07].")
@click.option("--batch-size", type=int, default=None, help="Weight-training batch per process [default: 64].")
@click.option("--width", type=float, default=None, help="Proxy width multiplier [default: 0.25].")
@click.option("--resolution", type=int, default=None, help="Proxy input resolution [default: 32].")
@click.option("--rl-lr", type=float, default=None, help="Base RL learning rate per 256 held-out images of global batch [default: see README].")
@click.option("--rl-samples", type=int, default=None,
              help="TuNAS: archs per step and process, each on 1/K of the batch (emulates K shards) [default: 1].")
@click.option("--latency-samples", type=int, default=None,
              help="TuNAS, absolute reward: extra archs per step that price the latency term of the gradient "
              "(0: the sampled arch only, as TuNAS) [default: the preset's, 1024 proxy, 0 paper].")
@click.option("--latency-term", default=None,
              help="TuNAS, absolute reward: samples (each arch priced, TuNAS's term) | expected (the policy's "
              "expected latency priced: beta |E[T]/T0 - 1|) [default: samples].")
@click.option("--candidates", type=int, default=None, help="Random search: archs to train [default: 5].")
@click.option("--remat/--no-remat", default=None, help="Rematerialise layers that average several ops [default: on].")
@click.option("--refine/--no-refine", default=None,
              help="TuNAS: optional final latency refinement of the argmax (see search/README.md) [default: off: final arch = argmax].")
@click.option("--weight-lr", type=float, default=None,
              help="Peak SGD learning rate of the shared weights per 256 images of global batch [default: 0.4].")
@click.option("--lr-scaling", default=None, help="linear: learning rates x global batch / 256 (recorded in "
              "result.json); none: as given [default: linear].")
@click.option("--amp", is_flag=True, default=None, help="bf16 autocast (for CUDA).")
@click.option("--channels-last/--no-channels-last", default=None,
              help="NHWC memory format [default: on CUDA only].")
@click.option("--checkpoint-every", type=int, default=None, help="Steps between checkpoints in OUT/checkpoint; "
              "re-running the same command resumes from the newest (0: none) [default: 200].")
@click.option("--lambda-lat", type=float, default=None, help="TF-NAS: latency weight λ in CE + λ|LAT/T − 1| [default: the preset's, 1.0 proxy, 0.1 paper].")
@click.option("--temperature", type=float, default=None, help="TF-NAS: initial Gumbel-softmax temperature [default: 5.0].")
@click.option("--temperature-decay", type=float, default=None, help="TF-NAS: temperature factor per epoch [default: 0.96].")
@click.option("--arch-lr", type=float, default=None, help="TF-NAS: Adam learning rate of α, β [default: 0.01].")
@click.option("--arch-every", type=int, default=None, help="TF-NAS: an architecture step every N steps [default: 2].")
@click.option("--epoch-steps", type=int, default=None,
              help="TF-NAS: steps per epoch (temperature, elasticity) [default: one pass over the proxy training split].")
@click.option("--elastic-every", type=int, default=None, help="TF-NAS: elasticity scaling every N steps [default: every epoch].")
@click.option("--latency-weights", type=click.Choice(["gumbel", "softmax"]), default=None,
              help="TF-NAS: weights that price the expected latency [default: gumbel, as TF-NAS's code].")
@click.option("--latency-target", type=click.Choice(["expected", "derived"]), default=None,
              help="TF-NAS: LAT in the loss: expected = the expected latency (TF-NAS); derived = the derived arch's "
              "latency with the expected latency's gradient [default: the preset's, derived proxy, expected paper].")
@click.option("--preset", default=None,
              help="TuNAS, TF-NAS and NetAdaptV2: proxy = settings measured to land on the target at the built-in "
              "proxy's budget (TuNAS: beta -3.0, 1024 latency samples, SGD; TF-NAS: lambda 1.0 on the derived arch's latency); paper = the paper's "
              "(TuNAS: beta -0.10, one sample, RMSProp, L2 on conv kernels; TF-NAS: lambda 0.1 on the expected latency; NetAdaptV2: J 200, "
              "L 10, 3 % reduction, decay 0.98). Explicit options override it (search/README.md) [default: proxy].")
@click.option("--metric", type=click.Choice(["latency", "macs"]), default=None,
              help="NetAdaptV2: what the target constrains; macs: --target-ms is millions of MACs [default: latency].")
@click.option("--samples", type=int, default=None, help="NetAdaptV2: J, samples per MCD iteration.")
@click.option("--layers", type=int, default=None, help="NetAdaptV2: L, layers shrunk per sample.")
@click.option("--initial-reduction", type=float, default=None,
              help="NetAdaptV2: first iteration's resource reduction (fraction of the initial network's).")
@click.option("--decay", type=float, default=None, help="NetAdaptV2: resource reduction × this per iteration.")
@click.option("--scd/--mcd", "scd", default=None, help="NetAdaptV2: single-layer coordinate descent (L = 1).")
@click.option("--ordered-dropout/--no-ordered-dropout", "ordered_dropout", default=None,
              help="NetAdaptV2: per-image widths in super-network training [default: on].")
@click.option("--full-fraction", type=float, default=None,
              help="NetAdaptV2: share of each batch run at full width [default: proxy 0.25, paper 0].")
@click.option("--threads", type=int, default=None, help="torch threads per process [default: 1].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def search(target_ms, algo, space_name, lut, steps, epochs, seed, out, data, valid_data, holdout, workers,
           weight_optimizer, kernel_sharing, measure, reward, beta, batch_size, width, resolution, rl_lr, rl_samples,
           latency_samples, latency_term, candidates, remat, refine, weight_lr, lr_scaling, amp, channels_last, checkpoint_every,
           lambda_lat, temperature, temperature_decay, arch_lr, arch_every, epoch_steps, elastic_every,
           latency_weights, latency_target, preset, metric, samples, layers, initial_reduction, decay, scd, ordered_dropout,
           full_fraction, threads, quiet, as_json):
    """Search SPACE for the most accurate arch at TARGET ms on a LUT (TuNAS or random search).

    Trains a weight-sharing supernet of the space on a small proxy task (built-in: scikit-learn's
    digits) while the controller learns where to spend latency; writes OUT/result.json (final
    arch, indices, latencies, per-step trajectory) and OUT/trajectory.png. Under
    `torchrun --nproc-per-node N -m latbench search ...` the supernet trains with DDP (several
    nodes: `--nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT`, see search/README.md). A
    killed search re-run with the same command resumes from OUT/checkpoint.

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
                      resolution=resolution, threads=threads, epochs=epochs, valid_data=valid_data, holdout=holdout,
                      workers=workers, weight_lr=weight_lr, lr_scaling=lr_scaling, amp=amp,
                      channels_last=channels_last, checkpoint_every=checkpoint_every,
                      # algorithm-specific: an error when the chosen algorithm has no such option
                      reward=reward, beta=beta, rl_lr=rl_lr, rl_samples=rl_samples, latency_samples=latency_samples,
                      latency_term=latency_term,
                      candidates=candidates, refine=refine, lambda_lat=lambda_lat, temperature=temperature,
                      temperature_decay=temperature_decay, arch_lr=arch_lr, arch_every=arch_every,
                      epoch_steps=epoch_steps, elastic_every=elastic_every, latency_weights=latency_weights,
                      latency_target=latency_target,
                      preset=preset, metric=metric, samples=samples, layers=layers,
                      initial_reduction=initial_reduction, decay=decay, scd=scd, ordered_dropout=ordered_dropout,
                      full_fraction=full_fraction, weight_optimizer=weight_optimizer, kernel_sharing=kernel_sharing)

    def announce(c):
        if hasattr(c, "settings_text"):
            click.echo(c.settings_text(), err=True)

    result = run_search(cfg, measure=measure, on_start=announce)
    if result.get("world_size", 1) > 1 and result.get("files") is None:
        return  # not rank 0: rank 0 reports
    summary = {k: result.get(k) for k in _SUMMARY_KEYS if k in result}
    unit = "M MACs" if result.get("metric") == "macs" else "ms"
    lines = [f"{result['algo']} in {result['space']} ({result['lut'] or result.get('metric')}): "
             f"{result['latency_ms']:.3f} {unit} for target {target_ms:g} {unit} "
             f"({100 * result['relative_error']:.2f}% off)"]
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
