"""Validation of a LUT against measured whole networks (DESIGN §7): metrics, CSV, scatter plot."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from .arch import format_indices
from .errors import BadInput
from .fileio import atomic_write, atomic_write_text
from .stats import noise_cv, noise_mape  # noqa: F401  (part of the validation API)


def fidelity_metrics(predicted, measured) -> dict:
    """MAPE, RMSE, bias, max error, correlations and ±5/±10 % hit rates. Percentages are percent."""
    from scipy import stats

    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    rel = (p - m) / m * 100.0
    out = {
        "n": int(p.size),
        "mape": float(np.mean(np.abs(rel))),
        "rmse_ms": float(np.sqrt(np.mean((p - m) ** 2))),
        "bias_pct": float(np.mean(rel)),
        "max_abs_err_pct": float(np.max(np.abs(rel))),
        "max_abs_err_ms": float(np.max(np.abs(p - m))),
        "within_5_pct": float(np.mean(np.abs(rel) <= 5.0) * 100.0),
        "within_10_pct": float(np.mean(np.abs(rel) <= 10.0) * 100.0),
    }
    if p.size >= 3 and np.ptp(p) > 0 and np.ptp(m) > 0:
        out["pearson"] = float(stats.pearsonr(p, m)[0])
        out["spearman"] = float(stats.spearmanr(p, m)[0])
        out["kendall_tau"] = float(stats.kendalltau(p, m)[0])
    else:
        out["pearson"] = out["spearman"] = out["kendall_tau"] = float("nan")
    if p.size >= MIN_CI_ARCHS:
        out["ci95"] = bootstrap_ci(p, m)
    return out


MIN_CI_ARCHS = 10
CI_RESAMPLES = 2000
VECTORISED_TAU_MAX_ARCHS = 300


def bootstrap_ci(predicted, measured, resamples: int = CI_RESAMPLES, seed: int = 0) -> dict:
    """95 % percentile-bootstrap intervals (archs resampled with replacement, seeded) of the
    goal metrics: with 100 archs a ±5 % hit rate of 91 % is 85–96 %, so a goal is judged
    against the interval, not only the point."""
    p = np.asarray(predicted, dtype=float)
    m = np.asarray(measured, dtype=float)
    idx = np.random.default_rng(seed).integers(0, p.size, size=(resamples, p.size))
    err = np.abs((p - m) / m * 100.0)[idx]
    draws = {"mape": err.mean(axis=1), "within_5_pct": (err <= 5.0).mean(axis=1) * 100.0,
             "within_10_pct": (err <= 10.0).mean(axis=1) * 100.0}
    if p.size <= VECTORISED_TAU_MAX_ARCHS:  # pairs × resamples in memory: fast for the usual 100 archs
        taus = _kendall_tau_b_rows(p[idx], m[idx])
    else:
        from scipy import stats

        with np.errstate(invalid="ignore"):
            taus = np.array([stats.kendalltau(p[i], m[i])[0] for i in idx])
    if np.isfinite(taus).all():
        draws["kendall_tau"] = taus
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in draws.items()}


def _kendall_tau_b_rows(P, M, chunk: int = 100) -> np.ndarray:
    """Kendall τ-b of each row pair of P and M (resamples × archs), as scipy's kendalltau computes
    it (ties count in neither the concordant nor the discordant pairs), vectorised over rows."""
    out = np.empty(len(P))
    for start in range(0, len(P), chunk):
        sp = np.sign(P[start:start + chunk, :, None] - P[start:start + chunk, None, :]).astype(np.int8)
        sm = np.sign(M[start:start + chunk, :, None] - M[start:start + chunk, None, :]).astype(np.int8)
        num = np.einsum("rij,rij->r", sp, sm, dtype=np.int64)
        den = np.sqrt(np.einsum("rij,rij->r", sp, sp, dtype=np.int64).astype(float)
                      * np.einsum("rij,rij->r", sm, sm, dtype=np.int64))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + chunk] = num / den
    return out


# above this a validation warns: half the 2 % MAPE a good table reaches, so noise would hide its error
NOISY_MAPE_PCT = 1.0


def noise_warning(report: dict) -> str | None:
    """One line for stderr when the report's measurements are too noisy to judge a good table."""
    if not report.get("noise_mape_pct", 0.0) > NOISY_MAPE_PCT:
        return None
    return (f"latbench: warning: the measurements vary by {report['noise_cv_pct']:.1f}% from round to round: "
            f"against them even a perfect table shows MAPE ≈ {report['noise_mape_pct']:.1f}%; more --rounds, "
            f"a quieter machine or (cpu) --timing paired lower that")


def fit_noise_warning(build_info: dict) -> str | None:
    """One line for stderr when a fitted table's training networks were measured too noisily: the
    fit learns their noise (on a noisy host, 5 → 15 rounds per network took a held-out MAPE from
    2.2 to 1.6 %; benchmarks/HISTORY.md, 2026-11-27 s13)."""
    noise = (build_info or {}).get("train_noise_mape_pct")
    if noise is None or not noise > NOISY_MAPE_PCT:
        return None
    return (f"latbench: warning: the {build_info.get('archs')} training networks' round-to-round noise alone is "
            f"≈ {noise:.1f}% MAPE, and the fit learns it; rerun `latbench profile --archs ...` with more --rounds "
            f"(it adds rounds to the stored networks)")


def write_csv(rows: list, path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def scatter_plot(predicted, measured, path, title: str) -> None:
    """Predicted vs measured with y = x and ±5 % / ±10 % bands (TuNAS Figure 4 style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, m = np.asarray(predicted), np.asarray(measured)
    lo, hi = float(min(p.min(), m.min())) * 0.95, float(max(p.max(), m.max())) * 1.05
    x = np.linspace(lo, hi, 50)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    ax.fill_between(x, x * 0.9, x * 1.1, color="tab:orange", alpha=0.15, label="±10%")
    ax.fill_between(x, x * 0.95, x * 1.05, color="tab:green", alpha=0.25, label="±5%")
    ax.plot(x, x, "k-", lw=1, label="y = x")
    ax.scatter(m, p, s=12, color="tab:blue", label="archs")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def validate_table(table, space, archs: list, store, out_dir=None, title: str = "") -> dict:
    """Predict `archs` with `table`, compare with their measurements in `store`, write the outputs."""
    from .measure.profiling import arch_key

    results = store.results("arch")
    rows, preds, meas, round_meds = [], [], [], []
    estimated, outside = set(), 0
    for a in archs:
        key = arch_key(a)
        r = results[key]
        pred = table.predict(a)
        estimated |= set(pred.estimated)
        outside += pred.outside_fit_range
        preds.append(pred.latency_ms)
        meas.append(r["ms"])
        round_meds.append(store.round_medians(key))
        rows.append({"indices": format_indices(a.indices) if a.indices is not None else "", "name": a.name,
                     "macs": a.macs, "predicted_ms": round(pred.latency_ms, 4), "measured_ms": round(r["ms"], 4),
                     "mad_ms": round(r["mad"], 4), "error_pct": round((pred.latency_ms - r["ms"]) / r["ms"] * 100, 3),
                     "estimated_ops": len(pred.estimated), "outside_fit_range": int(pred.outside_fit_range)})
    report = fidelity_metrics(preds, meas)
    report.update(noise_cv_pct=noise_cv(round_meds), noise_mape_pct=noise_mape(round_meds),
                  estimated_keys=len(estimated), outside_fit_range=outside, space=space.name,
                  lut_method=table.data.get("method"), lut_granularity=table.granularity,
                  lut=table.source, measured_on=store.fingerprint)
    report.update(drift_report(table, store, preds, meas))
    if report.get("drift_factor"):
        rows = [_with_after(row, "error_pct", "corrected_error_pct",
                            round((p * report["drift_factor"] - m) / m * 100, 3))
                for row, p, m in zip(rows, preds, meas)]
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
        write_csv(rows, out_dir / "archs.csv")
        scatter_plot(preds, meas, out_dir / "scatter.png", title or
                     f"{space.name}: MAPE {report['mape']:.2f}%, τ {report['kendall_tau']:.3f}, "
                     f"{report['within_5_pct']:.0f}% within ±5%")
    return report


def _with_after(row: dict, after: str, key: str, value) -> dict:
    out = {}
    for k, v in row.items():
        out[k] = v
        if k == after:
            out[key] = value
    return out


def drift_report(table, store, preds, meas) -> dict:
    """The host's level change since the table's sitting, from its anchors measured in `store`
    (lut.anchors.level_change), and the metrics with that one factor taken out of the predictions:
    what is left is the table's own error. Without anchors: drift_pct None."""
    from .lut.anchors import level_change, table_dates

    change = level_change(table, store)
    out = {"table_dates": table_dates(table.data)}
    if change is None:
        return {**out, "drift_pct": None, "drift_anchors": len((table.data.get("anchors") or {}).get("items", []))}
    corrected = fidelity_metrics(np.asarray(preds, float) * change["factor"], meas)
    return {**out, "drift_pct": change["drift_pct"], "drift_ci95_pct": change["ci95_pct"],
            "drift_factor": change["factor"], "drift_anchors": change["anchors"], "drift": change,
            "drift_corrected": corrected}


# ---------------------------------------------------------------------- the `validate` job
BAND_POOL_FACTOR = 50  # --band: archs sampled per wanted arch before giving up


def parse_band(band: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in band.split(":"))
    except ValueError:
        raise BadInput(f"--band: expected LO:HI in ms, got {band!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
        raise BadInput(f"--band: expected 0 ≤ LO < HI (finite ms), got {band!r}")
    return lo, hi


def validation_archs(table, space, n: int, seed: int, band: str | None = None) -> list:
    """`n` held-out random archs of `space` (the `validate` stream), or with `band` "LO:HI" rejection-sampled
    into that predicted-latency band. Every arch is priced here, before anything is measured."""
    from .measure.profiling import sample_archs

    if band:
        lo, hi = parse_band(band)
        pool = sample_archs(space, n * BAND_POOL_FACTOR, seed, "validate")
        archs = [a for a in pool if lo <= table.predict(a).latency_ms <= hi][:n]
        if len(archs) < n:
            raise BadInput(f"--band: only {len(archs)} of {len(pool)} sampled archs fall in {lo:g}..{hi:g} ms")
        return archs
    archs = sample_archs(space, n, seed, "validate")
    for a in archs:
        table.predict(a)  # a table that cannot price the space fails now, not after the measurements
    return archs


def validation_timing(device_name: str, timing: str | None, table) -> str | None:
    """cpu: measure on the table's scale (its timing mode) unless --timing says otherwise."""
    if timing is None and device_name == "cpu":
        return (table.data.get("device") or {}).get("timing", "plain")
    return timing


def run_validation(table, space, archs: list, device, store, protocol, out_dir, progress: bool = True) -> dict:
    """Measure `archs` whole on `device` into `store` (resumable), then `validate_table`; closes the device."""
    import time

    from .lut.anchors import anchor_items
    from .measure.profiling import arch_items
    from .measure.protocol import run_items

    t0 = time.perf_counter()
    try:  # the table's anchors in the same interleaved pass: the host's level now, on the same clock
        run_items(device, arch_items(archs, role="validate") + anchor_items(table), store, protocol,
                  progress=progress, desc="validate")
    finally:
        device.close()
    report = validate_table(table, space, archs, store, out_dir)
    report["wall_s"] = round(time.perf_counter() - t0, 2)
    return report


def format_report(report: dict, table, out_dir) -> str:
    """The human-readable summary `latbench validate` prints."""
    ci = report.get("ci95", {})

    def interval(name, fmt):
        return f" [{fmt.format(ci[name][0])}–{fmt.format(ci[name][1])}]" if name in ci else ""
    fp = report["measured_on"]
    return (f"{report['space']}, {report['n']} archs, {report['lut_method']} {report['lut_granularity']} table on "
            f"{fp.get('device')}/{fp.get('runtime')}:\n"
            f"  MAPE {report['mape']:.2f}%{interval('mape', '{:.2f}')}  RMSE {report['rmse_ms']:.3f} ms  "
            f"bias {report['bias_pct']:+.2f}%  max |err| {report['max_abs_err_pct']:.2f}%\n"
            f"  Pearson {report['pearson']:.4f}  Spearman {report['spearman']:.4f}  "
            f"Kendall τ {report['kendall_tau']:.4f}{interval('kendall_tau', '{:.3f}')}\n"
            f"  within ±5%: {report['within_5_pct']:.1f}%{interval('within_5_pct', '{:.0f}')}  "
            f"within ±10%: {report['within_10_pct']:.1f}%{interval('within_10_pct', '{:.0f}')}  "
            f"noise floor CV {report['noise_cv_pct']:.2f}% (a perfect table: MAPE ≈ {report['noise_mape_pct']:.2f}%)\n"
            + ("  [..]: 95 % bootstrap intervals over the archs\n" if ci else "")
            + _drift_lines(report)
            + (f"  {report['outside_fit_range']} arch(s) predicted outside {table.fit_range_ms[0]:.2f}–"
               f"{table.fit_range_ms[1]:.2f} ms, the range the table was fitted on (archs.csv: outside_fit_range)\n"
               if report["outside_fit_range"] else "")
            + f"  wrote {out_dir}/report.json, archs.csv, scatter.png")


def _drift_lines(report: dict) -> str:
    """The drift part of `format_report`: level change since the table's sitting, corrected metrics."""
    dates = report.get("table_dates") or {}
    if report.get("drift_pct") is None:
        return ("  host drift: unknown (the table keeps no anchors; tables built by this version do)\n"
                if "drift_pct" in report else "")
    c, (lo, hi) = report["drift_corrected"], report["drift_ci95_pct"]
    return (f"  host drift since the table's sitting ({dates.get('level_measured')}): {report['drift_pct']:+.2f}% "
            f"[{lo:+.2f}…{hi:+.2f}] from {report['drift_anchors']} anchors measured in the same pass\n"
            f"  drift-corrected: MAPE {c['mape']:.2f}%  bias {c['bias_pct']:+.2f}%  within ±5%: "
            f"{c['within_5_pct']:.1f}%  within ±10%: {c['within_10_pct']:.1f}%  Kendall τ {c['kendall_tau']:.4f}\n")
