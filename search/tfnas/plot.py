"""trajectory.png of a TF-NAS search: latency (derived arch, expected, target, elasticity steps),
losses (weight loss, architecture CE, latency term), temperature, and the depth distribution
(expected depth per stage, from softmax(β)). Written atomically."""
from __future__ import annotations

from ..results import new_figure, save_figure


def plot_trajectory(result: dict, path) -> None:
    traj = result.get("trajectory") or []
    steps = [t["step"] for t in traj]
    target = result["target_ms"]
    plt, fig, axes = new_figure(4, 11)
    ax = axes[0]
    arch = [t for t in traj if t.get("expected_latency_ms") is not None]
    ax.plot([t["step"] for t in arch], [t["expected_latency_ms"] for t in arch], ".", ms=2, alpha=0.4,
            label="expected (Gumbel weights)")
    ax.plot(steps, [t["derived_latency_ms"] for t in traj], "-", lw=1.2, label="derived arch")
    for t in traj:
        if t.get("elasticity"):
            ax.axvline(t["step"], color="tab:green", lw=0.5, alpha=0.4)
    ax.axhline(target, color="k", lw=0.8, label=f"target {target:g} ms")
    ax.axhspan(target * 0.995, target * 1.005, color="k", alpha=0.1, label="+-0.5%")
    ax.set_ylabel("latency (ms)")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[1]
    ax.plot(steps, [t["train_loss"] for t in traj], ".", ms=2, alpha=0.4, label="weight loss (sum of paths)")
    ax.plot([t["step"] for t in arch], [t["arch_ce"] for t in arch], ".", ms=2, alpha=0.5, label="arch CE")
    ax.plot([t["step"] for t in arch], [t["latency_loss"] for t in arch], ".", ms=2, alpha=0.5,
            label="lambda |LAT/T - 1|")
    ax.set_ylabel("loss")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[2]
    ax.plot(steps, [t["temperature"] for t in traj])
    ax.set_ylabel("Gumbel temperature")
    ax = axes[3]
    if traj and traj[0].get("depth_probs"):
        for s in range(len(traj[0]["depth_probs"])):
            ax.plot(steps, [sum((d + 1) * p for d, p in enumerate(t["depth_probs"][s])) for t in traj],
                    label=f"depth decision {s + 1}")
        ax.legend(loc="upper right", fontsize=7, ncol=2)
    ax.set_ylabel("expected depth (softmax beta)")
    ax.set_xlabel("step")
    fig.suptitle(f"tfnas in {result['space']}: {result['latency_ms']:.3f} ms (target {target:g} ms)", fontsize=10)
    fig.tight_layout()
    save_figure(plt, fig, path)
