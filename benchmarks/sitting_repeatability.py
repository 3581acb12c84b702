"""How far the same networks' latencies move between two sittings, beyond each sitting's own noise.

A table is built from one sitting's measurements and used later; on a shared host a network's
latency can change between sittings by more than its round-to-round noise within one. This
compares the whole networks two stores have in common (e.g. the fidelity benchmark's held-out
archs, or a `latbench validate` store): after the best affine map b ≈ s·a + c (what a table's
scale and `base_ms` absorb), the per-network residual spread, next to what the two sittings'
noise alone would give (each network's standard error from its round medians).
The excess is per-network behaviour that no table built in one sitting can know about the other.

Usage:
  python benchmarks/sitting_repeatability.py STORE_A STORE_B [--role validate] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.measure.store import ProfileStore  # noqa: E402


def network_times(path, role):
    """{arch key: (ms, standard error of the mean of its round medians in ms)} of a store's networks."""
    store = ProfileStore(path)
    out = {}
    for key, res in store.results("arch").items():
        if role and res.get("role") != role:
            continue
        rounds = np.asarray(store.round_medians(key), float)
        if rounds.size >= 2:
            out[key] = (res["ms"], float(np.std(rounds, ddof=1) / np.sqrt(rounds.size)))
    store.close()
    return out


def compare(a: dict, b: dict) -> dict:
    keys = sorted(set(a) & set(b))
    if len(keys) < 3:
        raise SystemExit(f"only {len(keys)} networks in common: need 3 or more")
    ya, yb = np.array([a[k][0] for k in keys]), np.array([b[k][0] for k in keys])
    se = np.hypot([a[k][1] / a[k][0] for k in keys], [b[k][1] / b[k][0] for k in keys])
    w = 1 / yb  # relative errors, as MAPE judges
    (scale, offset), *_ = np.linalg.lstsq(np.c_[ya, np.ones_like(ya)] * w[:, None], yb * w, rcond=None)
    resid = yb / (scale * ya + offset) - 1
    sd, noise = float(np.std(resid, ddof=2)), float(np.sqrt(np.mean(se ** 2)))
    return {"networks": len(keys), "median_ratio_b_over_a": float(np.median(yb / ya)),
            "affine": {"scale": float(scale), "offset_ms": float(offset)},
            "residual_sd_pct": 100 * sd, "residual_mape_pct": 100 * float(np.mean(np.abs(resid))),
            "noise_sd_pct": 100 * noise, "excess_sd_pct": 100 * float(np.sqrt(max(0.0, sd ** 2 - noise ** 2)))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store_a")
    ap.add_argument("store_b")
    ap.add_argument("--role", default=None, help="only networks measured in this role (e.g. validate)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for p in (args.store_a, args.store_b):
        if not Path(p).is_file():
            raise SystemExit(f"{p}: no such store")
    r = compare(network_times(args.store_a, args.role), network_times(args.store_b, args.role))
    if args.json:
        print(json.dumps(r, indent=1))
        return
    print(f"{r['networks']} networks; b/a median {r['median_ratio_b_over_a']:.3f}; after b ≈ "
          f"{r['affine']['scale']:.3f}·a {r['affine']['offset_ms']:+.3f} ms: residual sd {r['residual_sd_pct']:.2f} % "
          f"(MAPE {r['residual_mape_pct']:.2f} %), the two sittings' noise alone {r['noise_sd_pct']:.2f} %, "
          f"excess {r['excess_sd_pct']:.2f} %")


if __name__ == "__main__":
    main()
