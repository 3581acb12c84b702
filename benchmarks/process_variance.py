"""Where a network's variance lives: per process (memory layout, allocator, page placement) or in time.

For each runtime, one network is measured in P fresh processes back to back and, interleaved with
them (so both see the same stretch of time), P times in one long-lived process. Each measurement
is one block (warm-up + `runs` timed runs, the protocol's round) in a latbench worker process
(latbench.devices.workers, what `--workers` uses), pinned to the same core. Then:

  fresh CV      spread of the P fresh-process medians: process-to-process + time
  same CV       spread of the P same-process medians over the same time: time only
  process CV    √max(0, fresh² − same²): the per-process part
  F p-value     one-sided F test that the fresh variance exceeds the same-process one

If the process part is comparable to the round-to-round noise of a table's networks, spreading
each item's rounds over N workers (`--workers N`) is worth its start-up cost.

Usage (on a quiet machine; it takes ~1–2 min per runtime):
  python benchmarks/process_variance.py --runtimes ort tflite torch --procs 20 --json benchmarks/results/process_variance.json
  python benchmarks/process_variance.py --runtimes ort --timing paired          # the same, paired timing
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.cli.options import make_device  # noqa: E402
from latbench.devices.workers import WorkerPoolDevice  # noqa: E402
from latbench.references import resolve_arch  # noqa: E402


def block_median(dev, arch, runs: int, warmup: int) -> float:
    prepared = dev.prepare(arch)
    sample = dev.measure(prepared, runs, warmup, 0.05)
    xs = np.repeat(sample.samples_ms, sample.runs_per_sample)
    return float(np.median(xs))


def study(runtime: str, arch, procs: int, runs: int, warmup: int, timing: str | None) -> dict:
    spec = dict(name="cpu", runtime=runtime, core=None, batch=None, benchmark_model=None, timing=timing, serial=None)
    local = make_device("cpu", runtime, None, None, None, timing=timing)
    persistent = WorkerPoolDevice(spec, 1, local)
    fresh, same, stamps, starts = [], [], [], []
    t0 = time.perf_counter()
    try:
        block_median(persistent, arch, runs, warmup)  # its first block builds the model: not counted
        for i in range(procs):
            one = WorkerPoolDevice(spec, 1, make_device("cpu", runtime, None, None, None, timing=timing))
            s = time.perf_counter()
            try:
                fresh.append(block_median(one, arch, runs, warmup))
            finally:
                one.close()
            starts.append(time.perf_counter() - s)
            same.append(block_median(persistent, arch, runs, warmup))
            stamps.append(time.perf_counter() - t0)
            print(f"  {runtime} {i + 1}/{procs}: fresh {fresh[-1]:.4f} ms, same process {same[-1]:.4f} ms",
                  file=sys.stderr)
    finally:
        persistent.close()
    return summarise(runtime, fresh, same, stamps, starts)


def summarise(runtime, fresh, same, stamps, starts) -> dict:
    from scipy import stats

    f, s = np.asarray(fresh), np.asarray(same)
    cv_f = float(np.std(f, ddof=1) / np.mean(f) * 100)
    cv_s = float(np.std(s, ddof=1) / np.mean(s) * 100)
    ratio = (np.var(f, ddof=1) / np.mean(f) ** 2) / max(np.var(s, ddof=1) / np.mean(s) ** 2, 1e-300)
    p = float(stats.f.sf(ratio, len(f) - 1, len(s) - 1))
    # paired: both see the same moment; the difference of their logs cancels what time does to both
    d = np.log(f) - np.log(s)
    return {"runtime": runtime, "procs": len(f), "fresh_median_ms": float(np.median(f)),
            "same_median_ms": float(np.median(s)), "fresh_cv_pct": cv_f, "same_cv_pct": cv_s,
            "process_cv_pct": float(np.sqrt(max(0.0, cv_f ** 2 - cv_s ** 2))), "variance_ratio": float(ratio),
            "f_test_p": p, "paired_log_diff_sd_pct": float(np.std(d, ddof=1) * 100),
            "fresh_minus_same_pct": float((np.exp(np.mean(d)) - 1) * 100), "span_s": stamps[-1],
            "process_start_s": float(np.median(starts)), "fresh_ms": fresh, "same_ms": same}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtimes", nargs="+", default=["ort", "tflite", "torch"])
    ap.add_argument("--arch", default="mobilenetv2", help="a reference name or arch file (default mobilenetv2)")
    ap.add_argument("--procs", type=int, default=20)
    ap.add_argument("--runs", type=int, default=100, help="timed runs per block (a protocol round)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--timing", choices=["plain", "paired"], default=None)
    ap.add_argument("--json", dest="json_out", default=None)
    a = ap.parse_args()
    arch = resolve_arch(a.arch)
    rows = []
    for rt in a.runtimes:
        rows.append(study(rt, arch, a.procs, a.runs, a.warmup, a.timing))
    print(f"{arch.name}, {a.procs} fresh processes vs one process over the same time, {a.runs} runs per block, "
          f"timing {a.timing or 'plain'}; {platform.node()}, {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print(f"{'runtime':8} {'median ms':>9} {'fresh CV%':>9} {'same CV%':>9} {'process CV%':>11} {'F p':>7} "
          f"{'fresh−same%':>11} {'start s':>7}")
    for r in rows:
        print(f"{r['runtime']:8} {r['fresh_median_ms']:9.4f} {r['fresh_cv_pct']:9.3f} {r['same_cv_pct']:9.3f} "
              f"{r['process_cv_pct']:11.3f} {r['f_test_p']:7.3f} {r['fresh_minus_same_pct']:+11.3f} "
              f"{r['process_start_s']:7.2f}")
    if a.json_out:
        Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json_out).write_text(json.dumps({"arch": arch.name, "procs": a.procs, "runs": a.runs,
                                                "timing": a.timing or "plain", "host": platform.node(),
                                                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": rows},
                                               indent=1) + "\n")


if __name__ == "__main__":
    main()
