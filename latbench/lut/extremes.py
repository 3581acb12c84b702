"""`profile --extremes`: the fastest and slowest archs of a space, to add to a fitted table's training set."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadInput
from ..measure.profiling import sample_archs
from ..measure.store import ProfileStore
from .build import build_lut
from .table import LatencyTable

EXTREMES_POOL = 3000  # random archs that extreme_archs ranks


def extreme_archs(space, table, k: int, seed: int, exclude=(), pool: int = EXTREMES_POOL) -> list:
    """The `k` fastest and `k` slowest of `pool` random archs of `space`, ranked by `table`'s prediction.

    Why: a fitted table is a linear fit of its training networks and extrapolates beyond their latency
    range (its base_ms is often below zero), while uniform random archs seldom reach a space's ends; training
    on the ends too keeps the smallest and largest networks inside the range (benchmarks/HISTORY.md,
    2026-11-27 s13–s14)."""
    have = {tuple(a.indices) for a in exclude}
    cands = [a for a in sample_archs(space, pool, seed, "extremes") if tuple(a.indices) not in have]
    order = np.argsort([table.predict(a).latency_ms for a in cands], kind="stable")
    k = min(k, len(cands) // 2)
    return [cands[i] for i in list(order[:k]) + list(order[len(order) - k:][::-1])]


def ranked_extremes(db_path, fingerprint: dict, space, granularity: str, k: int, seed: int, exclude: list) -> list:
    """`profile --extremes`: extreme_archs ranked by the isolated table of this device's ops in `db_path`."""
    if not Path(db_path).exists():
        raise BadInput(f"--extremes: {db_path}: no such profile store; profile the ops of {space.name} into it first")
    store = ProfileStore(db_path, fingerprint)
    try:
        table = LatencyTable.from_dict(build_lut(store, "isolated", granularity, space.name))
    finally:
        store.close()
    return extreme_archs(space, table, k, seed, exclude)


