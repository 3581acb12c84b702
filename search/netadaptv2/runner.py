"""`run_netadaptv2(ctx)`: train the OD/CBC super-network on the proxy task, then MCD (or SCD) to the
target on a non-differentiable metric (a latency table or MACs); the result holds the final Arch
and every iteration's best arch, metric and accuracy.

`prepare_context(cfg)` builds the SearchContext this algorithm needs (any NetAdaptV2 space, an
arch-level metric instead of a compiled LatencyModel, the proxy data at this algorithm's
resolution); the registry uses it in place of the shared one.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from latbench.errors import BadInput

from ..progress import progress_bar
from .config import make_config
from .mcd import coordinate_descent, default_groups
from .supernet import ODSuperNet, balanced_indices


def algo_config(cfg):
    """This algorithm's knobs: a NetAdaptV2SearchConfig resolves its preset and options; a plain
    SearchConfig (library use) gets the proxy preset."""
    return cfg.algo_config() if hasattr(cfg, "algo_config") else make_config("proxy")


def load_metric(space, metric: str, lut):
    """(metric object, table name) for --metric latency (a LUT) or macs."""
    from .metric import MacsMetric, TableLatency

    if metric == "macs":
        return MacsMetric(space), None
    if lut is None:
        from ..latency import default_lut

        try:
            lut = default_lut(space)
        except BadInput:
            raise BadInput(f"--lut: no shipped latency table for space {space.name}; "
                           "give --lut FILE or --metric macs") from None
    from latbench.lut.files import load_table

    table = load_table(lut)
    spaces = table.data.get("spaces") or []
    if spaces and space.name not in spaces:
        raise BadInput(f"--lut: {lut} was built for space(s) {', '.join(spaces)}, not {space.name}")
    if table.granularity not in ("layer", "block"):
        raise BadInput(f"--lut: {lut}: a {table.granularity} table cannot price {space.name} archs")
    return TableLatency(space, table), lut


def prepare_context(cfg):
    from latbench.spaces import get_space

    from ..context import SearchContext
    from ..data import load_proxy_data
    from ..distributed import init_distributed

    cfg.check()
    ncfg = algo_config(cfg)
    space = get_space(cfg.space)
    cfg.check_space(space)
    metric, lut = load_metric(space, ncfg.metric, cfg.lut)
    data = load_proxy_data(cfg.data, ncfg.resolution)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist = init_distributed()
    if dist.world > 1:
        raise BadInput("netadaptv2 runs in one process (launch it without torchrun)")
    ctx = SearchContext(cfg, space, metric, lut, data, dist)
    ctx.algo_cfg = ncfg
    return ctx


# ---------------------------------------------------------------------- super-network
def train_supernet(net, data, ncfg, seed: int, progress=None) -> dict:
    """SGD (momentum 0.9, cosine lr) on the training split. With ordered dropout every image gets its
    own index list (balanced per decision; the first `full_fraction` of the batch runs the initial
    network); without, the whole batch trains one uniform sample."""
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=ncfg.lr, momentum=0.9, nesterov=True, weight_decay=ncfg.weight_decay)
    x_all, y_all = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    sizes = net.space.sizes
    n_full = int(ncfg.full_fraction * ncfg.batch_size)  # images per batch running the initial network
    t0, losses = time.time(), []
    net.train()
    for step in range(ncfg.train_steps):
        for group in opt.param_groups:
            group["lr"] = 0.5 * ncfg.lr * (1 + math.cos(math.pi * step / ncfg.train_steps))
        pick = torch.randint(len(y_all), (ncfg.batch_size,), generator=g)
        xb, yb = x_all[pick], y_all[pick]
        if ncfg.ordered_dropout:
            idx = balanced_indices(sizes, ncfg.batch_size, rng)
            idx[:n_full] = np.asarray(sizes) - 1  # sandwich: full network
        else:
            idx = np.array([int(rng.integers(n)) for n in sizes])
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xb, idx), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step, losses[-1])
    wall = time.time() - t0
    # distinct sub-networks trained per step: one per ordered-dropout image, the full-network share
    # of the batch counting once; without ordered dropout the batch trains one sample
    per_step = ncfg.batch_size - n_full + (1 if n_full else 0) if ncfg.ordered_dropout else 1
    return {"steps": ncfg.train_steps, "wall_s": wall, "s_per_step": wall / max(1, ncfg.train_steps),
            "ordered_dropout": ncfg.ordered_dropout, "full_fraction": ncfg.full_fraction,
            "subnetworks_per_step": per_step,
            "s_per_subnetwork": wall / max(1, ncfg.train_steps * per_step),
            "final_loss": float(np.mean(losses[-10:])) if losses else None,
            "parameters": sum(p.numel() for p in net.parameters())}


@torch.no_grad()
def accuracy(net, idx, x, y, batch: int = 512) -> float:
    net.eval()
    hits = 0
    for lo in range(0, len(y), batch):
        hits += int((net(x[lo:lo + batch], idx).argmax(1) == y[lo:lo + batch]).sum())
    return hits / max(1, len(y))


# ---------------------------------------------------------------------- the search
def run_netadaptv2(ctx) -> dict:
    cfg, space, metric = ctx.cfg, ctx.space, ctx.lm
    ncfg = getattr(ctx, "algo_cfg", None) or algo_config(cfg)
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    net = ODSuperNet(space, ctx.data.num_classes, ctx.data.in_channels, width=ncfg.width,
                     resolution=ncfg.resolution, min_feature_map=ncfg.min_feature_map)
    bar = progress_bar(cfg, ctx.dist, "netadaptv2 super-network", total=ncfg.train_steps)
    train = train_supernet(net, ctx.data, ncfg, cfg.seed,
                           None if bar is None else lambda s, l: (bar.update(1), bar.set_postfix_str(f"loss {l:.3f}")))
    if bar is not None:
        bar.close()
    xv, yv = torch.as_tensor(ctx.data.x_valid), torch.as_tensor(ctx.data.y_valid)
    pick = np.random.default_rng(cfg.seed + 1).permutation(len(yv))[:ncfg.eval_batch]
    xs, ys = xv[pick], yv[pick]

    def score(idx):
        return accuracy(net, idx, xs, ys)

    t1 = time.time()
    bar = progress_bar(cfg, ctx.dist, "netadaptv2 MCD" if not ncfg.scd else "netadaptv2 SCD", total=None)
    out = coordinate_descent(
        space.sizes, metric, score, cfg.target_ms, samples=ncfg.samples, layers=ncfg.layers,
        initial_reduction=ncfg.initial_reduction, decay=ncfg.decay, band=ncfg.band, groups=default_groups(space),
        scd=ncfg.scd, seed=cfg.seed, max_iterations=ncfg.max_iterations,
        progress=None if bar is None else lambda t: (bar.update(1), bar.set_postfix_str(
            f"{t['metric']:.2f} {getattr(metric, 'unit', '')}, acc {t['accuracy']:.3f}")))
    if bar is not None:
        bar.close()
    search_wall = time.time() - t1
    final = out["final"]
    value = float(metric(final))
    name = f"netadaptv2-{space.name}-{cfg.target_ms:g}{'ms' if ncfg.metric == 'latency' else 'M'}-seed{cfg.seed}"
    arch = space.decode(final, name=name)
    trajectory = []
    for t in out["trajectory"]:
        a = space.decode(t["indices"])
        trajectory.append({"step": t["step"], "iteration": t["iteration"], "constraint": t["constraint"],
                           "sampled_latency_ms": t["metric"], "metric": t["metric"], "accuracy": t["accuracy"],
                           "samples": t["samples"], "evaluated": t["evaluated"], "time_s": t["time_s"],
                           "macs": a.macs, "indices": ":".join(map(str, t["indices"])), "arch": a.to_dict()})
    from ..results import FORMAT

    return {"format": FORMAT, "algo": "netadaptv2", "space": space.name, "lut": ctx.lut, "metric": ncfg.metric,
            "metric_unit": getattr(metric, "unit", ""), "target_ms": cfg.target_ms,
            "latency_ms": value, "relative_error": abs(value / cfg.target_ms - 1.0),
            "in_band": (1 - ncfg.band) * cfg.target_ms <= value <= cfg.target_ms,
            "indices": ":".join(map(str, final)), "arch": arch.to_dict(), "macs": arch.macs,
            "seed": cfg.seed, "steps": ncfg.train_steps, "world_size": ctx.dist.world, "wall_s": time.time() - t0,
            "data": ctx.data.describe(),
            "proxy_accuracy": accuracy(net, final, xv, yv),
            "proxy_accuracy_kind": "shared super-network weights, whole valid split",
            "initial_metric": out["initial_metric"], "iterations": out["iterations"],
            "samples_evaluated": out["evaluated"], "metric_evaluations": getattr(metric, "evaluations", None),
            "search_wall_s": search_wall, "supernet": train, "config": {**cfg.as_dict(), "resolved": ncfg.as_dict()},
            "trajectory": trajectory}
