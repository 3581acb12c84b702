"""Summary statistics of raw latency samples (robust: median and MAD first)."""
from __future__ import annotations

import math

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


def noise_cv(round_medians: list) -> float:
    """Noise floor: mean over archs of the CV (%) of their per-round medians."""
    cvs = [float(np.std(r) / np.mean(r) * 100.0) for r in round_medians if len(r) >= 2 and np.mean(r) > 0]
    return float(np.mean(cvs)) if cvs else float("nan")


def noise_mape(round_medians: list) -> float:
    """The MAPE measurement noise alone gives a perfect table (%): mean over archs of
    E|x̄ − μ| / μ = √(2/π) · σ/μ / √rounds, for independent normal rounds (σ from the sample
    standard deviation / c4, unbiased). A lower bound (a median of rounds scatters ~1.25× more than
    their mean): a table cannot be shown better than this."""
    def c4(n):
        return math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))
    errs = [float(np.std(r, ddof=1) / c4(len(r)) / np.mean(r) / np.sqrt(len(r)) * np.sqrt(2 / np.pi) * 100.0)
            for r in round_medians if len(r) >= 2 and np.mean(r) > 0]
    return float(np.mean(errs)) if errs else float("nan")


def level_ci_pct(round_medians) -> float | None:
    """Half-width (%) of the 95 % confidence interval of an item's level, from its per-round medians:
    Student t_{n−1} · s / √n relative to their mean. Rounds, not single runs, are the independent
    units (runs inside a round share the host's state of the moment). None with fewer than 2 rounds."""
    from scipy import stats

    r = np.asarray(round_medians, dtype=float)
    if r.size < 2 or not r.mean() > 0:
        return None
    half = float(stats.t.ppf(0.975, r.size - 1) * np.std(r, ddof=1) / math.sqrt(r.size))
    return 100.0 * half / float(r.mean())
