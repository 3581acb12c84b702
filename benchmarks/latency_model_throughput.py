"""LatencyModel throughput on the TuNAS spaces with the shipped Pixel-1 tables.

Per space: compile time, LatencyModel.latency() on 10**6 random index lists (archs/s; int64 and
uint8 index arrays, best of --repeats), and expected_latency() forward + backward through a
softmax over logits (median of --repeats * 10 runs). Prints a table and writes
benchmarks/results/latency_model_throughput.json with the machine description.

Measure one core with:  taskset -c 1 python benchmarks/latency_model_throughput.py
(BLAS / torch threads are set to the number of cores the process may run on.)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(_CORES))  # before numpy / torch load their thread pools

import numpy as np  # noqa: E402
import torch  # noqa: E402

from latbench.devices.hostinfo import cpu_model  # noqa: E402
from latbench.lut.latency_model import LatencyModel  # noqa: E402
from latbench.lut.files import load_table  # noqa: E402
from latbench.spaces import get_space  # noqa: E402
from latbench.spaces.tunas import TUNAS_SPACES  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "latency_model_throughput.json"


def machine() -> dict:
    return {"cpu_model": cpu_model(), "cpus_online": os.cpu_count(), "cores_used": _CORES,
            "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "threads_env": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__, "platform": platform.platform(),
            "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def bench_space(name: str, n: int, repeats: int, seed: int) -> dict:
    space = get_space(name)
    table = load_table(f"pixel1-tunas-{name}")
    t = time.perf_counter()
    model = LatencyModel(space, table)
    compile_s = time.perf_counter() - t

    rng = np.random.default_rng(seed)
    idx = (rng.random((n, space.num_decisions)) * np.array(space.sizes)).astype(np.int64)
    check = np.array([table.predict(space.decode(i)).latency_ms for i in idx[:100]])
    max_err = float(np.abs(model.latency(idx[:100]) - check).max())  # sanity: same as LatencyTable.predict

    rates = {}
    for label, x in (("int64", idx), ("uint8", idx.astype(np.uint8))):
        model.latency(x[:10_000])  # warm-up
        best = min(_timed(lambda: model.latency(x)) for _ in range(repeats))
        rates[label] = n / best

    logits = [torch.zeros(k, dtype=torch.float64, requires_grad=True) for k in space.sizes]

    def fwd_bwd():
        for l in logits:
            l.grad = None
        model.expected_latency([torch.softmax(l, 0) for l in logits]).backward()

    fwd_bwd()
    times = sorted(_timed(fwd_bwd) for _ in range(10 * repeats))
    return {"space": name, "table": f"pixel1-tunas-{name}", "decisions": space.num_decisions,
            "factors": len(model.factors), "table_entries": int(model._flat.size),
            "compile_s": round(compile_s, 4), "archs": n,
            "latency_archs_per_s_int64": round(rates["int64"]), "latency_archs_per_s_uint8": round(rates["uint8"]),
            "expected_latency_fwd_bwd_ms_median": round(1e3 * times[len(times) // 2], 3),
            "expected_latency_fwd_bwd_ms_min": round(1e3 * times[0], 3),
            "max_abs_error_vs_predict_ms": max_err}


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=10 ** 6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", default=str(OUT))
    args = ap.parse_args(argv)
    torch.set_num_threads(_CORES)

    info = machine()
    print(f"{info['cpu_model']}, {info['cores_used']} core(s) of {info['cpus_online']}; python {info['python']}, "
          f"numpy {info['numpy']}, torch {info['torch']}")
    rows = []
    print(f"{'space':24s} {'factors':>7s} {'archs/s int64':>14s} {'archs/s uint8':>14s} {'E[lat] f+b ms':>14s}")
    for name in TUNAS_SPACES:
        r = bench_space(name, args.archs, args.repeats, args.seed)
        rows.append(r)
        print(f"{name:24s} {r['factors']:7d} {r['latency_archs_per_s_int64']:14,d} {r['latency_archs_per_s_uint8']:14,d} "
              f"{r['expected_latency_fwd_bwd_ms_median']:14.3f}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "latency_model_throughput", "command": " ".join(sys.argv),
                               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "machine": info, "results": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
