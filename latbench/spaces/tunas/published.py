"""TuNAS's published Pixel-1 cost model, normalised into the fields of a `latbench-lut/1` table.

The cost model is linear over TuNAS layer positions: one weight per (layer, output width, input
width, choice). Its table has granularity `tunas-layer`: an arch's "ops" are its present TuNAS
layers, keyed `tunas:blockB/layerL:o=OUT:i=IN:CHOICE`. Normalised so that every entry is ≥ 0 and a
skipped layer costs exactly 0 (it has no entry), with no change to any prediction:
  1. a skippable layer's skip weight depends only on its block's width, so it is subtracted from
     every choice of that layer and added to every entry of the block's first layer (same width);
  2. each non-skippable layer's minimum reachable entry is subtracted from its entries and added
     to `base_ms` (a skippable layer's entries are already relative to skipping it).
Entries that stay negative after this (a layer choice cheaper than skipping the layer, which
a regression can produce) are reported by `normalised_cost_model` as an error; none occur in the
three published spaces.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import BadInput
from ...fileio import read_json, short
from .keys import TUNAS_GRANULARITY, term_key


def _reachable(entry: dict):
    """(o, i) index pairs that can occur: inside a block the input width is the block's own."""
    outs, ins = entry["output_filters_options"], entry["input_filters_options"]
    if ins is None:
        return [(o, 0) for o in range(len(outs))]
    if entry["layer"] > 0:
        return [(o, ins.index(w)) for o, w in enumerate(outs) if w in ins]
    return [(o, i) for o in range(len(outs)) for i in range(len(ins))]


def normalised_cost_model(space, data_path) -> dict:
    """The fields of an imported table (device, runtime, batch, granularity, spaces, base_ms, entries,
    provenance) for TuNAS `space`; the lut layer adds the format header."""
    path = Path(data_path)
    try:
        data = read_json(path, "TuNAS cost-model")
    except BadInput as exc:
        raise BadInput(f"--data: {exc}") from None
    try:
        sp = data["spaces"][space.tunas_key]
        layers = sp["layers_with_cost_features"]
        bias = float(sp["bias"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"--data: {path}: not a TuNAS cost-model file ({type(exc).__name__}: {short(str(exc))})") from None
    W = {e["name"]: np.array(e["weights"], dtype=np.float64) for e in layers}
    by_name = {e["name"]: e for e in layers}
    base = bias
    # 1. skip weights -> the block's first layer
    for e in layers:
        if not e.get("skippable"):
            continue
        first = by_name.get(f"block{e['block']}/layer0")
        w, skip_c = W[e["name"]], len(e["choice_features"]) - 1
        for o, i in _reachable(e):
            s = float(w[o, i, skip_c])
            w[o, i, skip_c] = 0.0
            w[o, i, :skip_c] -= s
            if first is not None and first["output_filters_options"] == e["output_filters_options"]:
                W[first["name"]][o, :, :] += s
            elif len(e["output_filters_options"]) == 1:
                base += s
            else:
                raise BadInput(f"{path}: {e['name']}: cannot move a width-dependent skip weight")
    # 2. per-layer minimum -> base; collect entries
    entries = {}
    for e in layers:
        w = W[e["name"]]
        choices = e["choice_features"]
        n_c = len(choices) - (1 if e.get("skippable") else 0)
        reach = _reachable(e)
        m = min(float(w[o, i, c]) for o, i in reach for c in range(n_c))
        if e.get("skippable"):
            m = 0.0  # skipping must stay free: present choices are already relative to skip
        base += m
        ins = e["input_filters_options"]
        for o, i in reach:
            for c in range(n_c):
                key = term_key(e["name"], e["output_filters_options"][o], ins[i] if ins else None, choices[c])
                ms = round(float(w[o, i, c]) - m, 9)
                if ms < 0:
                    raise BadInput(f"{path}: {e['name']} {choices[c]}: costs less than skipping the layer "
                                   f"({ms:.4f} ms); cannot normalise to non-negative entries")
                entries[key] = {"ms": ms}
    src = data.get("source", {})
    return {
        "device": {"device": "pixel1", "model": "Pixel 1 (simulated by TuNAS's linear cost model)",
                   "runtime": "tflite", "threads": 1, "batch": 1},
        "runtime": "tflite", "batch": 1, "granularity": TUNAS_GRANULARITY, "spaces": [space.name],
        "base_ms": base, "entries": entries,
        "provenance": {
            "imported_from": f"{src.get('repository', 'google-research/google-research')}/"
                             f"{src.get('directory', 'tunas/')} {src.get('data_file', '')} @ {src.get('commit_read', '')}",
            "license": "Apache-2.0 (TuNAS cost model data, (c) Google LLC); see latbench/data/NOTICE-tunas.md",
            "paper": src.get("paper", "TuNAS, CVPR 2020"),
            "normalisation": "skip weights moved to the block's first layer; per-layer minimum moved to base_ms; "
                             "predictions identical to the raw linear model"}}
