"""Search outputs: `result.json` (format latbench-search-result/1), `timing.json` and `trajectory.png`.

All are written atomically (temp file in the same folder + rename), by rank 0 only. result.json is
a pure function of the options (on a CPU, where torch is deterministic): the wall-clock fields a
runner reports (`wall_s`, each trajectory step's `time_s`) go to timing.json instead, so a search
killed and resumed from its checkpoint ends with a byte-identical result.json. The result dict a
runner returns (and the CLI prints) keeps them.
"""
from __future__ import annotations

import json
from pathlib import Path

from latbench.arch import format_indices
from latbench.fileio import atomic_write, atomic_write_text
from latbench.references import SEARCH_RESULT_FORMAT

FORMAT = SEARCH_RESULT_FORMAT


def base_result(ctx, algo: str, arch, wall_s: float, indices=None) -> dict:
    """The fields every algorithm reports about its final `arch` (an Arch). `indices`: its index list
    when the algorithm searched one of the space's index lists (TuNAS, random); algorithms whose
    archs leave the space's grid (TF-NAS widths, NetAdaptV2 pruning) give none, and the latency
    then comes from the table's own prediction."""
    space, cfg = ctx.space, ctx.cfg
    arch.name = f"{algo}-{space.name}-{cfg.target_ms:g}ms-seed{cfg.seed}"
    if indices is not None:
        indices = [int(i) for i in indices]
        lat = float(ctx.lm.latency(indices))
    else:
        lat = float(ctx.lm.table.predict(arch).latency_ms)
    return {"format": FORMAT, "algo": algo, "space": space.name, "lut": ctx.lut, "target_ms": cfg.target_ms,
            "latency_ms": lat, "relative_error": abs(lat / cfg.target_ms - 1.0),
            "indices": None if indices is None else format_indices(indices), "arch": arch.to_dict(),
            "seed": cfg.seed, "steps": cfg.steps, "epochs": cfg.epochs, "world_size": ctx.dist.world, "wall_s": wall_s,
            "data": ctx.data.describe(), "learning_rates": ctx.learning_rates}


WALL_CLOCK = ("wall_s",)  # top-level fields that hold wall-clock time
STEP_WALL_CLOCK = ("time_s",)  # the same in trajectory entries


def split_timing(result: dict) -> tuple[dict, dict]:
    """(result without wall-clock fields, timing.json's content)."""
    clean = {k: v for k, v in result.items() if k not in WALL_CLOCK}
    timing = {k: result[k] for k in WALL_CLOCK if k in result}
    traj = result.get("trajectory")
    if traj:
        clean["trajectory"] = [{k: v for k, v in t.items() if k not in STEP_WALL_CLOCK} for t in traj]
        timing["steps"] = [{"step": t.get("step"), **{k: t[k] for k in STEP_WALL_CLOCK if k in t}} for t in traj]
    for k in ("resumed_at_step",):
        if k in result:
            clean.pop(k)
            timing[k] = result[k]
    return clean, timing


def write_results(out_dir, result: dict, plot=None) -> dict:
    """result.json + trajectory.png; `plot(result, path)` draws the latter (default: plot_trajectory)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"result": str(out / "result.json"), "timing": str(out / "timing.json"),
             "plot": str(out / "trajectory.png")}
    (plot or plot_trajectory)(result, out / "trajectory.png")
    clean, timing = split_timing(result)
    atomic_write_text(out / "timing.json", json.dumps(timing, indent=1) + "\n")
    atomic_write_text(out / "result.json", json.dumps({**clean, "files": files}, indent=1) + "\n")
    return files


def new_figure(rows: int, height: float):
    """(pyplot, figure, axes) of `rows` plots over steps, off-screen (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(8, height), sharex=True)
    return plt, fig, axes


def save_figure(plt, fig, path) -> None:
    """Write `fig` as a PNG atomically and release it."""
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    finally:
        plt.close(fig)


def plot_trajectory(result: dict, path) -> None:
    """Latency (sampled, argmax, target), reward / accuracy and RL learning rate over steps."""
    traj = result.get("trajectory") or []
    steps = [t["step"] for t in traj]
    target = result["target_ms"]
    plt, fig, axes = new_figure(3, 9)
    ax = axes[0]
    ax.plot(steps, [t.get("sampled_latency_ms") for t in traj], ".", ms=2, alpha=0.4, label="sampled")
    if any(t.get("argmax_latency_ms") is not None for t in traj):
        ax.plot(steps, [t.get("argmax_latency_ms") for t in traj], "-", lw=1.2, label="argmax")
    ax.axhline(target, color="k", lw=0.8, label=f"target {target:g} ms")
    ax.axhspan(target * 0.995, target * 1.005, color="k", alpha=0.1, label="+-0.5%")
    ax.set_ylabel("latency (ms)")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[1]
    for key, label in (("reward", "reward"), ("accuracy", "proxy accuracy (batch)")):
        vals = [t.get(key) for t in traj]
        if any(v is not None for v in vals):
            ax.plot(steps, vals, ".", ms=2, alpha=0.5, label=label)
    ax.set_ylabel("reward / accuracy")
    ax.legend(loc="lower right", fontsize=8)
    ax = axes[2]
    if any(t.get("rl_lr") is not None for t in traj):
        ax.plot(steps, [t.get("rl_lr") for t in traj], label="RL lr")
    if any(t.get("warmup_p") is not None for t in traj):
        ax2 = ax.twinx()
        ax2.plot(steps, [t.get("warmup_p") for t in traj], color="tab:orange", label="warmup p")
        ax2.set_ylabel("op/filter warmup p")
    ax.set_ylabel("RL learning rate")
    ax.set_xlabel("step")
    fig.suptitle(f"{result['algo']} in {result['space']}: {result['latency_ms']:.2f} ms "
                 f"(target {target:g} ms)", fontsize=10)
    fig.tight_layout()
    save_figure(plt, fig, path)
