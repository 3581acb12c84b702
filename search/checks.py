"""Checks of a search's options that need no training: run before the first step, so a bad option
never costs a whole search (an 800-step run lost to an unwritable --out found at the end)."""
from __future__ import annotations

import math
from dataclasses import fields

from latbench.errors import BadInput
from latbench.fileio import check_writable


def check_options(cfg) -> None:
    """Every number of the config finite (any algorithm's), and an --out folder that can be written
    (probed, nothing left behind)."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInput(f"--{f.name.replace('_', '-')}: must be a finite number, got {value}")
    check_writable(cfg.out, "--out", folder=True)


def check_target(cfg, lm, lut: str) -> None:
    """A target the table cannot reach in the space (outside its exact latency range) is an error."""
    from latbench.lut.latency_range import latency_range

    lo, hi, exact = latency_range(lm)
    if not lo <= cfg.target_ms <= hi:
        span = f"{lo:.2f}–{hi:.2f} ms" if exact else f"at most {lo:.2f}–{hi:.2f} ms"
        raise BadInput(f"--target-ms: {cfg.target_ms:g} ms is out of reach: {lut} prices the archs of "
                       f"{lm.space.name} at {span}")
