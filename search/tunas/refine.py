"""Optional final step of a search (off by default; `--refine`): latency refinement.

The argmax of a short search can end a little off the target (the reward is nearly flat within
a percent of T0, so the controller cannot resolve it). Refinement returns the most probable
architecture under the final policy whose predicted latency is within `tolerance` of T0, among
those reachable from the argmax by at most `depth` decision changes (beam search over single
changes; the beam keeps half the closest-to-target and half the most probable candidates).
If none is found the closest candidate is returned and `reached` is False. The raw argmax and its
latency stay in result.json (`argmax_indices`, `argmax_latency_ms`) next to the refined arch.
"""
from __future__ import annotations

import numpy as np


def refine_to_target(lm, logp: np.ndarray, sizes, start, target: float, tolerance: float = 0.005,
                     depth: int = 3, beam: int = 32) -> tuple[np.ndarray, dict]:
    """(indices, info) with info = {changes, reached, latency_ms, log_prob_drop}."""
    start = np.asarray(start, dtype=np.int64)
    d_idx = np.arange(len(sizes))
    score0 = float(logp[d_idx, start].sum())

    def info(idx, lat, reached, level):
        return {"changes": int((idx != start).sum()), "reached": bool(reached), "latency_ms": float(lat),
                "log_prob_drop": score0 - float(logp[d_idx, idx].sum()), "depth_searched": level}

    lat0 = float(lm.latency(start))
    if abs(lat0 / target - 1) <= tolerance:
        return start, info(start, lat0, True, 0)
    pairs = np.array([(d, o) for d, n in enumerate(sizes) for o in range(n)], dtype=np.int64)
    frontier = start[None]
    best_idx, best_lat = start, lat0
    for level in range(1, depth + 1):
        cands = np.repeat(frontier, len(pairs), axis=0)
        rows = np.arange(len(cands))
        cands[rows, np.tile(pairs[:, 0], len(frontier))] = np.tile(pairs[:, 1], len(frontier))
        cands = np.unique(cands, axis=0)
        lat = np.asarray(lm.latency(cands), dtype=float)
        score = logp[d_idx, cands].sum(axis=1)
        err = np.abs(lat / target - 1)
        ok = err <= tolerance
        if ok.any():
            j = np.flatnonzero(ok)[np.argmax(score[ok])]
            return cands[j], info(cands[j], lat[j], True, level)
        j = int(np.argmin(err))
        if err[j] < abs(best_lat / target - 1):
            best_idx, best_lat = cands[j], lat[j]
        half = max(1, beam // 2)
        keep = np.unique(np.concatenate([np.argsort(err)[:half], np.argsort(-score)[:half]]))
        frontier = cands[keep]
    return best_idx, info(best_idx, best_lat, False, depth)
