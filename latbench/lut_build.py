"""Building LUTs from a profile store: isolated, context and fitted (DESIGN §6).

- isolated: each op measured alone. Every isolated run also pays the runtime's per-call
  overhead, which a whole network pays once; the store's overhead probe (a global pool of a
  1x1x8 map: no work, all overhead) is measured alongside, moved into `base_ms` and subtracted
  from every entry (clipped at 0).
- context: whole random networks measured with the runtime's own per-node profiler; node times
  mapped back to ops through node names (layer index + part) and averaged per key. The profiler's
  kernel times are not end-to-end times (it adds its own cost per node and misses the runtime's
  work between nodes), so with ≥ 5 networks the entries are rescaled by one factor s and `base_ms`
  set to c, from the least-squares fit measured ≈ s·Σ entries + c over the same networks; with
  fewer, s = 1 and `base_ms` is the mean of (measured − Σ mapped node time).
- fitted: whole random networks measured end to end; per-key latencies solved by non-negative
  ridge regression toward a prior table (min ‖Ax + c − y‖² + α‖x − μ‖², x ≥ 0, α by
  cross-validation of the unconstrained ridge, intercept c = base correction, μ = s·x_prior + γ·w:
  the prior table's overall level error s and a cost γ per weight, from y ≈ s·A·x_prior + γ·A·w + c),
  as TuNAS's linear Pixel-1 model does.
  The prior is the isolated table (DESIGN §6) or, with `prior="context"`, the context table:
  where a runtime fuses across op boundaries (ONNX Runtime layer entries run ~40 % over) the
  context table is the better starting point and the end-to-end fit corrects what the profiler's
  view misses.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from .arch import parse_arch
from .errors import BadInput
from .lut import make_lut, provenance
from .ops import decompose, make_op, op_features, op_from_key
from .store import tags_of

PRIORS = ("isolated", "context")  # what a fitted table is regularised toward
PROBE_OP = make_op("pool", r=1, c=8)
PROBE_KEY = PROBE_OP.key


def _train_archs(store, space: str | None):
    archs = []
    for key, res in store.results("arch").items():
        if res.get("role") != "train" or (space and res.get("space") != space):
            continue
        archs.append((key, parse_arch(res["arch"], f"store arch {key}"), res))
    return archs


def isolated_entries(store, granularity: str, spaces=None) -> tuple[dict, float, list]:
    res = store.results("op")
    probe = store.results("probe").get(PROBE_KEY)
    overhead = probe["ms"] if probe else 0.0
    entries, used_spaces = {}, set()
    for key, r in res.items():
        own_spaces = tags_of(r, "space")
        if granularity not in tags_of(r, "granularity") or (spaces and not own_spaces & set(spaces)):
            continue
        used_spaces |= own_spaces & set(spaces) if spaces else own_spaces
        entries[key] = {"ms": max(0.0, r["ms"] - overhead), "raw_ms": r["ms"], "mad": r["mad"], "n": r["n"],
                        "p10": r["p10"], "p90": r["p90"], "cv": round(r["cv"], 3)}
    if not entries:
        raise BadInput(f"{store.path}: no {granularity}-granularity op measurements"
                       + (f" for space {', '.join(spaces)}" if spaces else "") + " (run `latbench profile` first)")
    return entries, overhead, sorted(s for s in used_spaces if s)


def context_entries(store, granularity: str, space: str | None = None) -> tuple[dict, float, dict]:
    """Average per-key node time over the training archs that have node profiles."""
    per_key = defaultdict(list)
    residuals, sums, measured = [], [], []  # per network: measured − mapped, its op keys, measured
    n_archs = 0
    for key, arch, res in _train_archs(store, space):
        profiles = store.node_profiles(key)
        if not profiles:
            continue
        n_archs += 1
        uses = decompose(arch, granularity)
        by_slot = {(u.layer_index, u.part): u.op.key for u in uses}
        by_layer = defaultdict(list)
        for u in uses:
            by_layer[u.layer_index].append(u)
        for prof in profiles:
            slot_ms = defaultdict(float)
            mapped = 0.0
            for node in prof:
                layer, part = node.get("layer"), node.get("part") or ""
                if layer is None or layer not in by_layer:
                    continue
                if granularity == "block" or (layer, part) not in by_slot:
                    # block tables, or a node that belongs to the layer as a whole: charge the layer's first op
                    slot = (layer, "") if (layer, "") in by_slot else (layer, by_layer[layer][0].part)
                else:
                    slot = (layer, part)
                slot_ms[slot] += node["ms"]
                mapped += node["ms"]
            for slot, op_key in by_slot.items():
                per_key[op_key].append(slot_ms.get(slot, 0.0))
        residuals.append(res["ms"] - mapped)
        sums.append([u.op.key for u in uses])
        measured.append(res["ms"])
    if not n_archs:
        raise BadInput(f"{store.path}: no whole-network node profiles (run `latbench profile --archs N` with a "
                       "runtime that has a per-node profiler: cpu ort/torch, gpu, pixel1)")
    entries = {k: {"ms": float(np.mean(v)), "n": len(v), "std": float(np.std(v))} for k, v in per_key.items()}
    info = {"archs": n_archs}
    scale, base = _end_to_end_calibration(entries, sums, measured)
    if scale is None:
        return entries, float(np.mean(residuals)), info
    for e in entries.values():
        e["node_ms"] = e["ms"]
        e["ms"] = e["ms"] * scale
    return entries, base, {**info, "node_time_scale": scale}


def _end_to_end_calibration(entries, sums, measured, min_archs: int = 5):
    """(s, c) of measured ≈ s·Σ entries + c over the profiled networks, or (None, None) when there
    are too few networks or the fit is degenerate (s ≤ 0)."""
    if len(measured) < min_archs:
        return None, None
    x = np.array([sum(entries[k]["ms"] for k in keys) for keys in sums])
    y = np.array(measured)
    if np.ptp(x) <= 0:
        return None, None
    (scale, base), *_ = np.linalg.lstsq(np.c_[x, np.ones_like(x)], y, rcond=None)
    return (float(scale), float(base)) if scale > 0 else (None, None)


def fitted_entries(store, granularity: str, prior_entries: dict, prior_base: float, space: str | None = None,
                   prior_name: str = "isolated"):
    """Ridge regression of whole-network latencies (relative errors) toward a prior table
    (`prior_entries`/`prior_base`: the isolated table, or the context table for `prior_name="context"`)."""
    from scipy.optimize import lsq_linear
    from sklearn.linear_model import RidgeCV

    from .lut import LatencyTable

    archs = _train_archs(store, space)
    if len(archs) < 5:
        raise BadInput(f"{store.path}: fitted tables need ≥ 5 whole-network measurements, found {len(archs)} "
                       "(run `latbench profile --archs N`)")
    prior_table = LatencyTable.from_dict(make_lut(device={}, runtime="", batch=1, granularity=granularity, method=prior_name,
                                     spaces=[], base_ms=prior_base, entries=prior_entries, provenance_info={}))
    keys = sorted({u.op.key for _, a, _ in archs for u in decompose(a, granularity)})
    col = {k: i for i, k in enumerate(keys)}
    A = np.zeros((len(archs), len(keys)))
    y = np.zeros(len(archs))
    prior = np.array([prior_table.op_ms(k)[0] for k in keys])
    for r, (_, arch, res) in enumerate(archs):
        for u in decompose(arch, granularity):
            A[r, col[u.op.key]] += 1
        y[r] = res["ms"]
    # every network counts by its relative error (what MAPE and the ±5 % band judge): rows weighted
    # by 1/measured; in absolute terms the largest networks would decide the fit alone
    w = 1.0 / y
    Aw, yw = A * w[:, None], (y - prior_base) * w
    # the prior's level is off by a factor on most runtimes (ops measured alone pay per-call overhead)
    # and by a cost per weight: an op measured alone keeps its weights in cache, in a whole network
    # they come from further away (the network's weights do not fit). Regularise toward
    # s·prior + γ·weights, (s, γ) from measured ≈ s·A·prior + γ·A·weights + c over the networks.
    mparams = np.array([_weights(k) for k in keys]) / 1e6
    (prior_scale, per_mparam, _), *_ = np.linalg.lstsq(np.c_[Aw @ prior, Aw @ mparams, w], yw, rcond=None)
    if not prior_scale > 0:
        prior_scale, per_mparam = 1.0, 0.0
    prior_scale, per_mparam = float(prior_scale), float(per_mparam)
    prior = np.maximum(0.0, prior * prior_scale + per_mparam * mparams)
    resid = yw - Aw @ prior
    alpha = float(RidgeCV(alphas=np.logspace(-3, 3, 13), fit_intercept=False).fit(np.c_[Aw, w], resid).alpha_)
    # non-negative ridge toward the prior: min ‖W(A x + c − (y − base))‖² + α‖x − prior‖², x ≥ 0
    n = len(keys)
    M = np.vstack([np.hstack([Aw, w[:, None]]), np.hstack([np.sqrt(alpha) * np.eye(n), np.zeros((n, 1))])])
    rhs = np.concatenate([yw, np.sqrt(alpha) * prior])
    sol = lsq_linear(M, rhs, bounds=(np.r_[np.zeros(n), -np.inf], np.full(n + 1, np.inf)), method="bvls")
    fitted, intercept = sol.x[:n], float(sol.x[n])
    # keys no training network uses keep their prior time, at the fitted level and weight cost
    prior_field = f"{prior_name}_ms"
    entries = {k: {**e, "ms": max(0.0, e["ms"] * prior_scale + per_mparam * _weights(k) / 1e6), prior_field: e["ms"]}
               for k, e in prior_entries.items()}
    for k, v in zip(keys, fitted):
        e = dict(prior_entries.get(k, {}))
        e.update({"ms": float(v), prior_field: float(prior_table.op_ms(k)[0])})
        entries[k] = e
    rmse = float(np.sqrt(np.mean((A @ fitted + prior_base + intercept - y) ** 2)))
    return entries, prior_base + intercept, {"archs": len(archs), "prior": prior_name, "alpha": alpha,
                                           "prior_scale": prior_scale, "prior_ms_per_mparam": per_mparam,
                                           "weighting": "relative (rows / measured ms)", "train_rmse_ms": rmse}


def _weights(key: str) -> int:
    return op_features(op_from_key(key))["weights"]


def _arch_spaces(store, space):
    return [space] if space else sorted({r.get("space") for r in store.results("arch").values() if r.get("space")})


def build_lut(store, method: str, granularity: str, space: str | None = None, prior: str = "isolated") -> dict:
    """A latbench-lut/1 dict; `prior` (fitted only): the table the fit is regularised toward."""
    if prior not in PRIORS:
        raise BadInput(f"--prior: expected isolated or context, got {prior!r}")
    if prior != "isolated" and method != "fitted":
        raise BadInput(f"--prior {prior}: only the fitted method has a prior (got --method {method})")
    spaces = [space] if space else None
    uses_isolated = method == "isolated" or (method == "fitted" and prior == "isolated")
    iso_entries, overhead, used = isolated_entries(store, granularity, spaces) if uses_isolated else ({}, 0.0, [])
    info = {}
    if method == "isolated":
        entries, base = iso_entries, overhead
        info = {"overhead_probe": PROBE_KEY, "overhead_ms": overhead}
    elif method == "context":
        entries, base, info = context_entries(store, granularity, space)
        used = _arch_spaces(store, space)
    elif method == "fitted" and prior == "context":
        ctx_entries, ctx_base, _ = context_entries(store, granularity, space)
        entries, base, info = fitted_entries(store, granularity, ctx_entries, ctx_base, space, prior_name="context")
        used = _arch_spaces(store, space)
    elif method == "fitted":
        entries, base, info = fitted_entries(store, granularity, iso_entries, overhead, space)
    else:
        raise BadInput(f"--method: expected isolated, context or fitted, got {method!r}")
    fp = store.fingerprint
    return make_lut(device=fp, runtime=fp.get("runtime", ""), batch=fp.get("batch", 1), granularity=granularity,
                    method=method, spaces=used, base_ms=base, entries=entries, fingerprint_id=store.fp,
                    provenance_info=provenance(store=str(store.path), build=info))
