"""The fastest and slowest latency a LatencyModel can price in its space, exactly.

A search target outside this range can never be met (`search --target-ms` is checked against it
before any training). The sum of each factor's own min/max is only a bound when factors share
decisions (a layer's cost depends on its own and the previous layer's width), and a loose one
(mobilenetv3-like on its Pixel-1 table: -185..693 ms against a true 12..290 ms), so the extremes
are found by min-sum / max-sum variable elimination over the factors, decisions eliminated in walk
order: exact, and in the TuNAS and TF-NAS spaces no intermediate table grows beyond a few thousand
entries. Should one ever exceed MAX_TABLE, the per-factor bounds are returned, marked inexact.
"""
from __future__ import annotations

import math

import numpy as np

MAX_TABLE = 1 << 22


def _expand(vars_: tuple, arr: np.ndarray, union: tuple, sizes) -> np.ndarray:
    """`arr` over `vars_` laid out over `union` (sorted), size-1 axes where it does not depend."""
    order = sorted(range(len(vars_)), key=lambda i: vars_[i])
    arr = np.transpose(arr, order)
    return arr.reshape([int(sizes[v]) if v in vars_ else 1 for v in union])


def _eliminate(lm, reduce) -> float | None:
    pool = []
    for pos, _, flat, dims in lm.factors:
        vars_ = tuple(int(d) for d in pos)
        if len(set(vars_)) != len(vars_):
            return None
        pool.append((vars_, flat.reshape(dims)))
    total = 0.0
    for d in range(len(lm.sizes)):
        touching = [f for f in pool if d in f[0]]
        if not touching:
            continue
        pool = [f for f in pool if d not in f[0]]
        union = tuple(sorted({v for vars_, _ in touching for v in vars_}))
        if math.prod(int(lm.sizes[v]) for v in union) > MAX_TABLE:
            return None
        acc = sum(_expand(vars_, arr, union, lm.sizes) for vars_, arr in touching)
        rest = tuple(v for v in union if v != d)
        reduced = reduce(acc, axis=union.index(d))
        if rest:
            pool.append((rest, reduced))
        else:
            total += float(reduced)
    return total + sum(float(arr.sum()) for _, arr in pool)  # only if factors had no decisions left


def latency_range(lm) -> tuple[float, float, bool]:
    """(lowest, highest, exact) predicted ms over every arch of `lm`'s space."""
    const = lm.base_ms + lm.const_ms
    lo, hi = _eliminate(lm, np.min), _eliminate(lm, np.max)
    if lo is not None and hi is not None:
        return const + lo, const + hi, True
    return (const + sum(float(f[2].min()) for f in lm.factors),
            const + sum(float(f[2].max()) for f in lm.factors), False)
