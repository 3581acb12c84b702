"""Multi-layer coordinate descent (NetAdaptV2 §2.4) and single-layer coordinate descent (NetAdapt).

Generic over index lists whose options are ordered small -> large (widths, kernel sizes): shrinking
a decision is lowering its index. A *layer* is a group of decisions shrunk together (a depthwise
layer's filters and kernel: "filters, kernel or both").

Iteration i, from the best arch so far (at first the initial network, every decision at its top):
  constraint_i = max(T, metric(best) - r0 * metric(initial) * decay^i)
  J samples, each: pick L distinct random layers, then lower one random decision of them by one
  step at a time until metric <= constraint_i (a sample whose layers run out first is dropped);
  a step that would land below (1 - band) T is never taken (another decision of the L is tried),
  so the first arch at or under T lies in [(1 - band) T, T]; when no sample reaches the
  constraint that way, the samples' partial progress competes instead (the next iteration goes
  on from it), and only when there is none may samples undershoot the band;
  score every sample (accuracy with the shared weights on held-out data), keep the best (ties:
  smaller metric). Stop once metric(best) <= T.
SCD: L = 1 and one sample per layer (NetAdaptV1), shrunk the same way.
"""
from __future__ import annotations

import time

import numpy as np


def default_groups(space) -> list[list[int]]:
    """Decision positions per layer: a NetAdaptV2 block's depthwise filters and kernel together,
    every other decision alone; spaces without `slots`: one decision per layer."""
    slots = getattr(space, "slots", None)
    if slots is None:
        return [[p] for p in range(len(space.sizes))]
    groups, dw = [], {}
    for p, (li, f) in enumerate(slots):
        if f in ("dw", "kernel"):
            if li in dw:
                groups[dw[li]].append(p)
                continue
            dw[li] = len(groups)
        groups.append([p])
    return groups


def shrink(best, layers, metric, constraint: float, lower: float, rng: np.random.Generator):
    """Lower decisions of `layers` (lists of positions) one step at a time, a random one each time,
    until metric <= constraint, never below `lower`. Returns (index list, metric, reached)."""
    cur = list(best)
    value = metric(cur)
    coords = [p for g in layers for p in g]
    while value > constraint:
        moved = False
        for p in rng.permutation(coords):
            if cur[p] == 0:
                continue
            cand = list(cur)
            cand[p] -= 1
            v = metric(cand)
            if v > value or v < lower:  # metric must not grow; the last step must stay in the band
                continue
            cur, value, moved = cand, v, True
            break
        if not moved:
            return cur, value, False
    return cur, value, True


def coordinate_descent(sizes, metric, score, target: float, *, samples: int = 12, layers: int = 4,
                       initial_reduction: float = 0.05, decay: float = 0.98, band: float = 0.01,
                       groups=None, scd: bool = False, seed: int = 0, start=None, max_iterations: int = 1000,
                       progress=None) -> dict:
    """Run MCD (or SCD) from `start` (default: every decision at its largest option) down to
    `target`. `metric(idx)` and `score(idx)` take index lists. Returns {final, metric, score,
    trajectory, evaluated, iterations}."""
    rng = np.random.default_rng(seed)
    groups = groups or [[p] for p in range(len(sizes))]
    best = list(start) if start is not None else [n - 1 for n in sizes]
    initial = metric(best)
    best_score = score(best)
    lower = (1.0 - band) * target
    trajectory = [{"step": 0, "iteration": 0, "constraint": None, "metric": initial, "accuracy": best_score,
                   "indices": list(best), "samples": 0, "evaluated": 0, "time_s": 0.0}]
    evaluated, t0, it = 0, time.time(), 0
    while metric(best) > target and it < max_iterations:
        it += 1
        cur = metric(best)
        constraint = max(target, cur - initial_reduction * initial * decay ** (it - 1))
        floor = lower  # no step may overshoot below the band, in any iteration
        if scd:
            picks = [[g] for g in groups]
        else:
            k = min(layers, len(groups))
            picks = [[groups[j] for j in rng.choice(len(groups), k, replace=False)] for _ in range(samples)]
        tries = [shrink(best, layer_set, metric, constraint, floor, rng) for layer_set in picks]
        cands = [(idx, v) for idx, v, reached in tries if reached]
        if not cands:
            # no sample reaches the constraint without leaving the band: keep the progress the samples
            # made (still above it) and go on with other layers next iteration
            cands = [(idx, v) for idx, v, _ in tries if v < cur]
        if not cands:
            # no progress either: take the samples that reach the constraint at all, below the band
            for layer_set in picks:
                idx, v, reached = shrink(best, layer_set, metric, constraint, -np.inf, rng)
                if reached:
                    cands.append((idx, v))
        if not cands:
            raise RuntimeError(f"iteration {it}: no sample reaches {constraint:.4g} (every picked layer at its "
                               f"minimum); use more layers per sample or a reachable target")
        scored = [(score(idx), -value, idx, value) for idx, value in cands]
        evaluated += len(scored)
        s, _, idx, value = max(scored, key=lambda t: (t[0], t[1]))
        best, best_score = idx, s
        trajectory.append({"step": it, "iteration": it, "constraint": constraint, "metric": value, "accuracy": s,
                           "indices": list(best), "samples": len(scored), "evaluated": evaluated,
                           "time_s": time.time() - t0})
        if progress is not None:
            progress(trajectory[-1])
    return {"final": best, "metric": metric(best), "score": best_score, "trajectory": trajectory,
            "evaluated": evaluated, "iterations": it, "initial_metric": initial}
