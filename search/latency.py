"""Latency for a search: the LUT (by path or shipped name) compiled into a LatencyModel.

Also vectorised uniform sampling of index lists (the same distribution as `space.sample`:
every decision uniform and independent) for big rejection-sampling batches.
"""
from __future__ import annotations

import numpy as np

from latbench.errors import BadInput


def default_lut(space) -> str:
    """The space's preferred shipped table (`SearchSpace.default_table`), else the first shipped
    table built for it."""
    from latbench.lut.files import load_table, shipped_tables

    shipped = shipped_tables()
    if space.default_table in shipped:
        return space.default_table
    for name in shipped:
        if space.name in load_table(name).data["spaces"]:
            return name
    raise BadInput(f"--lut: no shipped table for space {space.name}; give --lut FILE")


def load_latency_model(space, lut: str | None):
    """(LatencyModel, table name) for `space` and a LUT path / shipped name (None: default)."""
    from latbench.lut.latency_model import LatencyModel
    from latbench.lut.files import load_table

    name = lut or default_lut(space)
    table = load_table(name)
    spaces = table.data.get("spaces") or []
    if spaces and space.name not in spaces:
        raise BadInput(f"--lut: {name} was built for space(s) {', '.join(spaces)}, not {space.name}")
    return LatencyModel(space, table), name


def uniform_indices(sizes, n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, D] index lists, each decision uniform over its options (as SearchSpace.sample)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return (rng.random((n, len(sizes))) * sizes).astype(np.int64)


def rejection_sample(lm, sizes, target: float, band: float, n: int, rng: np.random.Generator,
                     batch: int = 65536, max_batches: int = 64) -> np.ndarray:
    """`n` distinct uniform index lists with |latency / target - 1| <= band (TuNAS section 3.2)."""
    found, seen, lat_lo, lat_hi = [], set(), np.inf, -np.inf
    for _ in range(max_batches):
        idx = uniform_indices(sizes, batch, rng)
        lat = np.asarray(lm.latency(idx))
        lat_lo, lat_hi = min(lat_lo, lat.min()), max(lat_hi, lat.max())
        for row in idx[np.abs(lat / target - 1.0) <= band]:
            key = row.tobytes()
            if key not in seen:
                seen.add(key)
                found.append(row)
                if len(found) == n:
                    return np.stack(found)
    raise BadInput(f"--target-ms: only {len(found)} of {n} random archs within {target:g} ms +- {band:.0%} "
                   f"in {max_batches * batch} samples (sampled latencies {lat_lo:.1f}..{lat_hi:.1f} ms)")
