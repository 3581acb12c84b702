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
  ridge regression toward a prior table (fit.py: the prior's level per group of ops, optionally
  changing with the op's size, and a cost per weight fitted first, the model chosen by
  cross-validation over the training networks),
  as TuNAS's linear Pixel-1 model does.
  The prior is the isolated table (DESIGN §6) or, with `prior="context"`, the context table:
  where a runtime fuses across op boundaries (ONNX Runtime layer entries run ~40 % over) the
  context table is the better starting point and the end-to-end fit corrects what the profiler's
  view misses. With `prior_table`, an existing table (built in an earlier sitting, or shipped) is
  the prior and the store needs whole networks only: a few measured now recalibrate its level.
"""
from __future__ import annotations

import functools
import math
import sys
from collections import defaultdict

import numpy as np

from ..arch import parse_arch
from ..errors import BadInput
from ..measure.profiling import PROBE_KEY
from ..measure.store import tags_of
from ..ops import decompose
from ..stats import noise_mape
from .anchors import ANCHOR_ARCHS, ANCHOR_OPS, arch_anchors, op_anchors
from .table import LatencyTable, make_lut, provenance

PRIORS = ("isolated", "context")  # what a fitted table is regularised toward


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
                        "p10": r["p10"], "p90": r["p90"], "cv": round(r["cv"], 3), "rounds": r.get("rounds"),
                        "ci95_pct": None if r.get("ci95_pct") is None else round(r["ci95_pct"], 4)}
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


def _entries_table(entries: dict, base: float, granularity: str, method: str):
    """This store's isolated or context entries as a LatencyTable (a fit's prior: it also estimates missing keys)."""
    return LatencyTable.from_dict(make_lut(device={}, runtime="", batch=1, granularity=granularity, method=method,
                                           spaces=[], base_ms=base, entries=entries, provenance_info={}))


def fitted_entries(store, granularity: str, prior_table, space: str | None = None, prior_name: str = "isolated",
                   groups: str = "auto", progress: bool = False):
    """Ridge regression of whole-network latencies toward `prior_table` (fit.py; a LatencyTable: this
    store's isolated table, its context table for `prior_name="context"`, or a loaded one for "lut")."""
    from .fit import fit_network_latencies, fits_needed

    archs = _train_archs(store, space)
    if len(archs) < 5:
        raise BadInput(f"{store.path}: fitted tables need ≥ 5 whole-network measurements, found {len(archs)} "
                       "(run `latbench profile --archs N`)")
    prior_entries, prior_base = prior_table.data["entries"], prior_table.base_ms
    prior_ms = functools.cache(lambda k: prior_table.op_ms(k)[0])  # read by the fit and for the entries
    bar = _fit_progress(fits_needed(len(archs), groups), progress)
    keys, times, intercept, scaled_prior, info = fit_network_latencies(
        [(arch, res["ms"]) for _, arch, res in archs], granularity, prior_ms, prior_base, groups, progress=bar.update)
    bar.close()
    # keys no training network uses keep their prior time, at the fitted level and weight cost
    prior_field = f"{prior_name}_ms"
    entries = {k: {**e, "ms": scaled_prior(k, e["ms"]), prior_field: e["ms"]} for k, e in prior_entries.items()}
    for k, v in zip(keys, times):
        e = dict(prior_entries.get(k, {}))
        e.update({"ms": float(v), prior_field: float(prior_ms(k))})
        entries[k] = e
    measured = [res["ms"] for _, _, res in archs]
    cis = [res["ci95_pct"] for _, _, res in archs if res.get("ci95_pct") is not None]
    # the fit learns the training networks' round-to-round noise too (validation.fit_noise_warning)
    noise = noise_mape([store.round_medians(key) for key, _, _ in archs])
    return entries, prior_base + intercept, {"archs": len(archs), "prior": prior_name, **info,
                                           "weighting": "relative (rows / measured ms)",
                                           "train_noise_mape_pct": None if math.isnan(noise) else noise,
                                           "train_ci95_pct": _ci_summary(cis),
                                           "fit_range_ms": [min(measured), max(measured)]}


def _ci_summary(cis: list) -> dict | None:
    """Median and largest 95 % CI half-width (%) of the training networks' levels (per-entry CIs of a
    fitted table do not exist: its entries are solved jointly; the networks' CIs bound them)."""
    return {"median": float(np.median(cis)), "max": float(np.max(cis))} if cis else None


def _fit_progress(total: int, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="fitting", unit="fit", file=sys.stderr, disable=not progress, leave=False)


def _arch_spaces(store, space):
    return [space] if space else sorted({r.get("space") for r in store.results("arch").values() if r.get("space")})


def build_lut(store, method: str, granularity: str, space: str | None = None, prior: str | None = None,
              groups: str | None = None, progress: bool = False, prior_table=None, anchors: int | None = None) -> dict:
    """A latbench-lut/1 dict; fitted only: `prior`, the table of this store the fit is regularised
    toward (default isolated), or `prior_table`, a loaded LatencyTable instead (e.g. from an earlier
    sitting: this store's networks recalibrate it), and `groups`, how the prior's level is fitted
    (fit.GROUPINGS, default auto: by cross-validation). `anchors`: how many measurements the table
    keeps to measure drift with later (anchors.py; default 8 networks / 6 ops, 0: none)."""
    from .fit import GROUPING_CHOICES

    if groups is not None and method != "fitted":
        raise BadInput(f"--prior-groups {groups}: only the fitted method has a prior (got --method {method})")
    groups = groups or "auto"
    if groups not in GROUPING_CHOICES:
        raise BadInput(f"--prior-groups: expected one of {', '.join(GROUPING_CHOICES)}, got {groups!r}")
    if prior_table is not None:
        return _build_toward_table(store, method, granularity, space, prior, groups, progress, prior_table, anchors)
    prior = prior or "isolated"
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
        ctx_table = _entries_table(*context_entries(store, granularity, space)[:2], granularity, "context")
        entries, base, info = fitted_entries(store, granularity, ctx_table, space, prior_name="context",
                                             groups=groups, progress=progress)
        used = _arch_spaces(store, space)
    elif method == "fitted":
        iso_table = _entries_table(iso_entries, overhead, granularity, "isolated")
        entries, base, info = fitted_entries(store, granularity, iso_table, space, groups=groups, progress=progress)
    else:
        raise BadInput(f"--method: expected isolated, context or fitted, got {method!r}")
    return _store_lut(store, granularity, method, used, base, entries, info,
                      _anchors(store, method, space, entries, anchors))


def _anchors(store, method, space, entries, k: int | None = None) -> dict | None:
    """The anchors a table keeps (anchors.py): some training networks, or for isolated tables some ops."""
    if k == 0:
        return None
    if method == "isolated":
        return op_anchors(store, list(entries), k or ANCHOR_OPS)
    return arch_anchors(store, [key for key, _, _ in _train_archs(store, space)], k or ANCHOR_ARCHS)


def _store_lut(store, granularity, method, spaces, base, entries, info, anchors=None) -> dict:
    """The latbench-lut/1 dict of a table built from `store` (its device fingerprint, the build info)."""
    fp = store.fingerprint
    # a fitted table is trusted inside the latency range of the networks it was fitted on (LatencyTable)
    extra = {"fit_range_ms": info.pop("fit_range_ms")} if "fit_range_ms" in info else {}
    if anchors:
        extra["anchors"] = anchors
    return make_lut(device=fp, runtime=fp.get("runtime", ""), batch=fp.get("batch", 1), granularity=granularity,
                    method=method, spaces=spaces, base_ms=base, entries=entries, fingerprint_id=store.fp,
                    provenance_info=provenance(store=str(store.path), build=info), **extra)


def _build_toward_table(store, method, granularity, space, prior, groups, progress, table, anchors=None) -> dict:
    """A fitted table from this store's whole networks toward an existing table (`--prior-lut`)."""
    src = table.source
    if method != "fitted":
        raise BadInput(f"--prior-lut {src}: only the fitted method has a prior (got --method {method})")
    if prior is not None:
        raise BadInput(f"--prior-lut {src} and --prior {prior}: give one prior, not both")
    if table.granularity != granularity:
        raise BadInput(f"--prior-lut {src}: a {table.granularity}-granularity table, but --granularity {granularity}")
    entries, base, info = fitted_entries(store, granularity, table, space, prior_name="lut", groups=groups,
                                         progress=progress)
    info["prior_lut"] = {"source": src, "method": table.data["method"], "base_ms": table.base_ms,
                         "device": table.data["device"], "created": table.data["provenance"].get("created")}
    spaces = sorted(set(table.data["spaces"]) | set(_arch_spaces(store, space)))
    return _store_lut(store, granularity, method, spaces, base, entries, info,
                      _anchors(store, method, space, entries, anchors))
