"""Fitted tables (DESIGN §6): per-key latencies solved from whole networks measured end to end.

Non-negative ridge regression toward a prior table, in relative errors (rows divided by the
measured latency, so a 3 ms network counts like a 30 ms one, as MAPE and the ±5 % band judge):
min ‖W(A x + c − (y − base))‖² + α‖x − μ‖², x ≥ 0, α by cross-validation of the unconstrained
ridge, intercept c = base correction (TuNAS's Pixel-1 model is such a linear model).

The prior μ = s_g·x_prior + γ·weights: the prior table's level is off by a factor (ops measured
alone pay per-call overhead; a profiler's node times miss work between nodes) and by a cost per
weight (an op measured alone keeps its weights in cache, a whole network fetches them); s_g and γ
come from y − base ≈ Σ_g s_g·A·x_prior[g] + γ·A·weights + c over the networks. The factor can
differ between kinds of op (a runtime fuses or lays out some kinds differently inside a network)
and between resolutions (large activations leave the cache), so the groups g are one of
`GROUPINGS`: one factor for all keys, one per op kind, one per op kind and input resolution.
The level can also change with the op's size (`+size` variants): μ = s_g·x + t·x·ln(x/m) + γ·weights,
x the prior time, m the median prior time, i.e. a factor s_g·(x/m)^(t/s_g) to first order. On LiteRT,
ops that take longer alone run relatively faster inside a network (t < 0: a fixed cost per op call
weighs more on small ops). Which model generalises depends on the runtime and space (more factors
fit more, and overfit more), so `grouping="auto"` picks the one with the lowest 5-fold
cross-validated MAPE over the training networks themselves (the simplest one within 0.01 points of
the best); held-out networks are never looked at.
"""
from __future__ import annotations

import numpy as np

from ..ops import decompose, op_features, op_from_key

CV_FOLDS = 5
MIN_CV_ARCHS = 2 * CV_FOLDS  # fewer networks: one factor, no cross-validation
CV_TIE_PCT = 0.01  # cross-validated MAPE (percentage points) within which the simpler grouping wins


def _kind(key: str) -> str:
    return op_from_key(key).kind


def _kind_resolution(key: str) -> str:
    op = op_from_key(key)
    r = op.as_dict().get("r")
    return op.kind if r is None else f"{op.kind}@{r}"


GROUPINGS = {"one": lambda key: "all", "kind": _kind, "kind-resolution": _kind_resolution}
SIZE_SUFFIX = "+size"
# the prior-level models, simplest first (a tie in cross-validation goes to the earlier one)
MODELS = tuple(m for g in GROUPINGS for m in (g, g + SIZE_SUFFIX))
GROUPING_CHOICES = ("auto", *MODELS)


def _split_model(model: str) -> tuple[str, bool]:
    """'kind+size' -> ('kind', True)."""
    size = model.endswith(SIZE_SUFFIX)
    return (model[:-len(SIZE_SUFFIX)] if size else model), size


def weights_of(key: str) -> int:
    return op_features(op_from_key(key))["weights"]


class _Design:
    """The networks as rows of per-key use counts, with each key's prior time, weights and group."""

    def __init__(self, archs, granularity: str, prior_ms):
        self.keys = sorted({u.op.key for a, _ in archs for u in decompose(a, granularity)})
        col = {k: i for i, k in enumerate(self.keys)}
        self.A = np.zeros((len(archs), len(self.keys)))
        for r, (arch, _) in enumerate(archs):
            for u in decompose(arch, granularity):
                self.A[r, col[u.op.key]] += 1
        self.y = np.array([ms for _, ms in archs], dtype=float)
        self.prior = np.array([prior_ms(k) for k in self.keys])
        self.mparams = np.array([weights_of(k) for k in self.keys]) / 1e6
        positive = self.prior[self.prior > 0]
        self.size_ref_ms = float(np.median(positive)) if positive.size else 1.0
        self._labels = {}

    def labels(self, grouping: str) -> np.ndarray:
        """Each key's group (parsed once per grouping: every fold and model reuses it)."""
        if grouping not in self._labels:
            self._labels[grouping] = np.array([GROUPINGS[grouping](k) for k in self.keys])
        return self._labels[grouping]


def _size_feature(prior, ref_ms: float):
    """x·ln(x/m): the `+size` models' extra prior term (0 for x = 0)."""
    x = np.asarray(prior, dtype=float)
    return x * np.log(np.maximum(x, 1e-12) / ref_ms)


def _prior_model(A, y, base, prior, mparams, labels, size_ref_ms=None):
    """({group: s_g}, γ, s, t): the prior's level per group, cost per million weights, the one
    factor s of the single-group fit (for groups the networks cannot separate from the intercept)
    and the size slope t (0 unless `size_ref_ms` is given)."""
    w = 1.0 / y
    yw = (y - base) * w
    shared = [(A @ mparams) * w, w]  # columns every fit has: weight cost, intercept
    if size_ref_ms is not None:
        shared.insert(0, (A @ _size_feature(prior, size_ref_ms)) * w)
    coef, *_ = np.linalg.lstsq(np.c_[(A @ prior) * w, *shared], yw, rcond=None)
    s, tail = coef[0], coef[1:]
    if not s > 0:
        s, tail = 1.0, np.zeros_like(tail)
    scales = {str(g): float(s) for g in set(labels)}
    per_net = {g: A[:, labels == g] @ prior[labels == g] for g in sorted(scales)}
    # a group the same in every network cannot be told from the intercept, and a group whose own
    # factor comes out ≤ 0 has too little signal: both keep the one factor s
    free = [g for g, v in per_net.items() if np.ptp(v) > 1e-9 * max(np.abs(v).max(), 1e-12)]
    while len(free) > 1:
        fixed = sum((s * v for g, v in per_net.items() if g not in free), np.zeros(len(y)))
        cols = np.array([per_net[g] * w for g in free]).T
        coef, *_ = np.linalg.lstsq(np.c_[cols, *shared], yw - fixed * w, rcond=None)
        if np.all(coef[:len(free)] > 0):
            scales.update({g: float(v) for g, v in zip(free, coef[:len(free)])})
            tail = coef[len(free):]
            break
        free = [g for g, v in zip(free, coef) if v > 0]
    t, gamma = (tail[0], tail[1]) if size_ref_ms is not None else (0.0, tail[0])
    return scales, float(gamma), float(s), float(t)


def _scaled_prior(prior, mparams, labels, scales, gamma, default, t=0.0, size_ref_ms=1.0):
    s = np.array([scales.get(g, default) for g in labels])
    size = t * _size_feature(prior, size_ref_ms) if t else 0.0
    return np.maximum(0.0, s * prior + size + gamma * mparams)


def _solve(A, y, base, mu):
    """(x, c, α): non-negative ridge toward μ in relative errors, c unbounded (as c⁺ − c⁻)."""
    from scipy.optimize import nnls
    from sklearn.linear_model import RidgeCV

    w = 1.0 / y
    Aw, yw = A * w[:, None], (y - base) * w
    alpha = float(RidgeCV(alphas=np.logspace(-3, 3, 13), fit_intercept=False).fit(np.c_[Aw, w], yw - Aw @ mu).alpha_)
    n = A.shape[1]
    M = np.vstack([np.c_[Aw, w, -w], np.c_[np.sqrt(alpha) * np.eye(n), np.zeros((n, 2))]])
    sol, _ = nnls(M, np.concatenate([yw, np.sqrt(alpha) * mu]))
    return sol[:n], float(sol[n] - sol[n + 1]), alpha


def _fit(d: _Design, rows, base, model: str):
    """Fit on `rows` with prior-level `model` (one of MODELS); returns per-key times for every key of
    the design (keys the rows never use keep their scaled prior), the intercept, and the fit's details."""
    grouping, size = _split_model(model)
    labels = d.labels(grouping)
    ref = d.size_ref_ms if size else None
    used = d.A[rows].sum(axis=0) > 0
    A, y = d.A[rows][:, used], d.y[rows]
    scales, gamma, s, t = _prior_model(A, y, base, d.prior[used], d.mparams[used], labels[used], ref)
    x = _scaled_prior(d.prior, d.mparams, labels, scales, gamma, s, t, d.size_ref_ms)
    x[used], c, alpha = _solve(A, y, base, x[used])
    return x, c, {"scales": scales, "gamma": gamma, "scale": s, "size_slope": t, "alpha": alpha}


def _cv_mape(d: _Design, base, model: str) -> float:
    folds = np.arange(len(d.y)) % CV_FOLDS
    errors = []
    for f in range(CV_FOLDS):
        x, c, _ = _fit(d, folds != f, base, model)
        test = folds == f
        errors.append(np.abs((d.A[test] @ x + base + c) / d.y[test] - 1))
    return float(np.mean(np.concatenate(errors)) * 100)


def _cross_validates(n_archs: int, grouping: str) -> bool:
    return grouping == "auto" and n_archs >= MIN_CV_ARCHS


def fits_needed(n_archs: int, grouping: str = "auto") -> int:
    """How many fits `fit_network_latencies` makes (for a progress bar)."""
    return len(MODELS) * CV_FOLDS + 1 if _cross_validates(n_archs, grouping) else 1


def fit_network_latencies(archs, granularity: str, prior_ms, base: float, grouping: str = "auto", progress=None):
    """Solve per-key latencies from `archs` = [(Arch, measured ms)] toward `prior_ms(key)`.

    `grouping`: a prior-level model of MODELS, or auto (cross-validated). Returns (keys, times per
    key, intercept, scaled-prior function for other keys, info). `progress(n)` is called with the
    number of fits done (`fits_needed` in all)."""
    d = _Design(archs, granularity, prior_ms)
    cv = {}
    if _cross_validates(len(archs), grouping):
        for m in MODELS:
            cv[m] = _cv_mape(d, base, m)
            if progress:
                progress(CV_FOLDS)
        # the simplest model within CV_TIE_PCT of the best: more parameters must earn their place
        grouping = next(m for m in cv if cv[m] <= min(cv.values()) + CV_TIE_PCT)
    elif grouping == "auto":  # too few networks to cross-validate
        grouping = "one"
    x, c, fit = _fit(d, np.ones(len(archs), dtype=bool), base, grouping)
    if progress:
        progress(1)
    scales, gamma, s, t = fit["scales"], fit["gamma"], fit["scale"], fit["size_slope"]
    label_of = GROUPINGS[_split_model(grouping)[0]]

    def scaled_prior(key: str, prior_value: float) -> float:
        one = _scaled_prior(np.array([prior_value]), np.array([weights_of(key) / 1e6]), [label_of(key)],
                            scales, gamma, s, t, d.size_ref_ms)
        return float(one[0])

    rmse = float(np.sqrt(np.mean((d.A @ x + base + c - d.y) ** 2)))
    info = {"alpha": fit["alpha"], "prior_groups": grouping, "prior_scale": s, "prior_scales": scales,
            "prior_ms_per_mparam": gamma, "train_rmse_ms": rmse}
    if _split_model(grouping)[1]:
        info.update(prior_size_slope=t, prior_size_ref_ms=d.size_ref_ms)
    if cv:
        info["cv_mape_pct"] = {m: round(v, 3) for m, v in cv.items()}
    return d.keys, x, c, scaled_prior, info
