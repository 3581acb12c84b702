"""Summary statistics of raw latency samples (robust: median and MAD first)."""
from __future__ import annotations

import numpy as np


def summarize(samples_ms, weights=None) -> dict:
    """median, MAD, p10/p90, mean, CV (%), count of a list of ms samples.

    CV is the robust one, 1.4826·MAD / median, so a single outlier run does not trigger a re-measure.
    `weights` (runs per sample, for devices that report one average per invocation) scales `count`.
    """
    x = np.asarray(samples_ms, dtype=float)
    if x.size == 0:
        raise ValueError("no samples")
    median = float(np.median(x))
    mad = float(np.median(np.abs(x - median)))
    count = int(np.sum(weights)) if weights is not None else int(x.size)
    return {
        "ms": median,
        "mad": mad,
        "p10": float(np.percentile(x, 10)),
        "p90": float(np.percentile(x, 90)),
        "mean": float(x.mean()),
        "cv": float(100.0 * 1.4826 * mad / median) if median > 0 else 0.0,
        "n": count,
    }
