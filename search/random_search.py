"""Random-search baseline (TuNAS section 3.2, DESIGN 8.4).

Rejection-sample `candidates` distinct archs uniformly from the space within T0 +- `band`
(LatencyModel on batches of 65536), train each from fresh weights on the proxy task for an equal
share of the step budget (steps // candidates weight updates, same optimizer and schedule as the
TuNAS shared weights; search.standalone), score it on the whole validation split, keep the best.
"""
from __future__ import annotations

import time

import numpy as np

from .latency import rejection_sample
from .results import base_result
from .standalone import train_standalone
from .tunas import _progress


def run_random_search(ctx) -> dict:
    cfg, space, lm, dist = ctx.cfg, ctx.space, ctx.lm, ctx.dist
    t0 = time.time()
    rng = np.random.default_rng(cfg.seed)
    cands = rejection_sample(lm, space.sizes, cfg.target_ms, cfg.band, cfg.candidates, rng)
    per = max(1, cfg.steps // len(cands))
    bar = _progress(cfg, dist, "random")
    if bar is not None:
        bar.total = per * len(cands)
    trajectory, scored, best = [], [], None
    for i, idx in enumerate(cands):
        lat = float(lm.latency(idx))
        best_lat = None if best is None else scored[best]["latency_ms"]

        def record(s, loss, acc, i=i, lat=lat, best_lat=best_lat):
            trajectory.append({"step": i * per + s, "candidate": i, "accuracy": acc, "train_loss": loss,
                               "sampled_latency_ms": lat, "argmax_latency_ms": best_lat, "reward": None,
                               "rl_lr": None, "time_s": time.time() - t0})
            if bar is not None:
                bar.update(1)

        valid_acc = train_standalone(ctx, idx, per, cfg.seed * 1000 + i, record)
        scored.append({"indices": ":".join(map(str, idx)), "latency_ms": lat, "valid_accuracy": valid_acc})
        if best is None or valid_acc > scored[best]["valid_accuracy"]:
            best = i
        if bar is not None:
            bar.set_postfix_str(f"candidate {i + 1}/{len(cands)} acc {valid_acc:.3f}, "
                                f"best {scored[best]['valid_accuracy']:.3f}")
    if bar is not None:
        bar.close()
    from .tunas import build_supernet

    result = base_result(ctx, "random", cands[best], time.time() - t0)
    result.update({"proxy_accuracy": scored[best]["valid_accuracy"],
                   "proxy_accuracy_kind": f"stand-alone: fresh weights, {per} steps, whole valid split",
                   "candidates": scored, "best_candidate": best, "steps_per_candidate": per, "band": cfg.band,
                   "proxy": build_supernet(ctx, 0).describe(), "config": cfg.as_dict(), "trajectory": trajectory})
    return result
