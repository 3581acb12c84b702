"""Random-search baseline (TuNAS section 3.2, DESIGN 8.4).

Rejection-sample `candidates` distinct archs uniformly from the space within T0 +- `band`
(LatencyModel on batches of 65536), train each from fresh weights at the proxy scale for an equal
share of the step budget (steps // candidates weight updates, the common weight optimizer and
schedule; search.standalone), score it on the whole validation split, keep the best. Works in any
space whose archs are index lists.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from latbench.errors import BadInput

from .config import SearchConfig
from .latency import rejection_sample
from .progress import progress_bar
from .results import base_result
from .standalone import train_standalone


@dataclass
class RandomConfig(SearchConfig):
    candidates: int = 5
    band: float = 0.01  # rejection-sampling band: T0 +- 1%

    def check(self) -> None:
        super().check()
        if self.candidates < 1:
            raise BadInput(f"--candidates: must be at least 1, got {self.candidates}")

    def check_space(self, space) -> None:
        # rejection sampling prices millions of index lists through a compiled LatencyModel, which needs
        # the space's cost factors; a space without them is priced arch by arch only
        from latbench.spaces.base import SearchSpace

        if type(space).cost_factors is SearchSpace.cost_factors:
            raise BadInput(f"--space: {space.name}: random search needs a space a LatencyModel can compile "
                           "(one with cost factors)")


def run_random_search(ctx) -> dict:
    cfg, space, lm, dist = ctx.cfg, ctx.space, ctx.lm, ctx.dist
    t0 = time.time()
    rng = np.random.default_rng(cfg.seed)
    cands = rejection_sample(lm, space.sizes, cfg.target_ms, cfg.band, cfg.candidates, rng)
    per = max(1, cfg.steps // len(cands))
    bar = progress_bar(cfg, dist, "random", total=per * len(cands))
    trajectory, scored, best, proxy = [], [], None, None
    for i, idx in enumerate(cands):
        lat = float(lm.latency(idx))
        best_lat = None if best is None else scored[best]["latency_ms"]

        def record(s, loss, acc, i=i, lat=lat, best_lat=best_lat):
            trajectory.append({"step": i * per + s, "candidate": i, "accuracy": acc, "train_loss": loss,
                               "sampled_latency_ms": lat, "argmax_latency_ms": best_lat, "reward": None,
                               "rl_lr": None, "time_s": time.time() - t0})
            if bar is not None:
                bar.update(1)

        arch = space.decode([int(v) for v in idx])
        valid_acc, described = train_standalone(ctx, arch, per, cfg.seed * 1000 + i, record)
        scored.append({"indices": ":".join(map(str, idx)), "latency_ms": lat, "valid_accuracy": valid_acc})
        if best is None or valid_acc > scored[best]["valid_accuracy"]:
            best, proxy = i, described
        if bar is not None:
            bar.set_postfix_str(f"candidate {i + 1}/{len(cands)} acc {valid_acc:.3f}, "
                                f"best {scored[best]['valid_accuracy']:.3f}")
    if bar is not None:
        bar.close()
    result = base_result(ctx, "random", space.decode([int(v) for v in cands[best]]), time.time() - t0,
                         indices=cands[best])
    result.update({"proxy_accuracy": scored[best]["valid_accuracy"],
                   "proxy_accuracy_kind": f"stand-alone: fresh weights, {per} steps, whole valid split",
                   "candidates": scored, "best_candidate": best, "steps_per_candidate": per, "band": cfg.band,
                   "proxy": proxy, "config": cfg.as_dict(), "trajectory": trajectory})
    return result
