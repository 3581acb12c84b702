"""Plain vs paired timing on this host: how repeatable is a measurement, and what does it cost.

For each timing, the same items — whole reference networks and single ops of `proxylessnas` —
are measured `--repeats` times, each time into a fresh store with the default Protocol (3
interleaved rounds, re-measuring noisy items). Reported per item: the median latency of each
repeat and their CV across repeats (what a user sees when profiling the same thing twice), and
the wall time per repeat. A table with a 2% MAPE goal is only checkable where this CV is well
below 2%.

    python benchmarks/timing_stability.py --runtime ort --repeats 6
Writes benchmarks/results/timing_stability.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.devices import hostinfo  # noqa: E402
from latbench.devices.cpu import CpuDevice  # noqa: E402
from latbench.ops import decompose  # noqa: E402
from latbench.measure.protocol import Item, Protocol, run_items  # noqa: E402
from latbench.references import resolve_arch  # noqa: E402
from latbench.measure.store import ProfileStore  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "timing_stability.json"
NETWORKS = ("mobilenetv2", "proxylessnas-mobile", "mobilenetv3-large")


def items():
    out = [Item(n, resolve_arch(n), "arch", {}) for n in NETWORKS]
    layer_ops = [u.op for u in decompose(resolve_arch("proxylessnas-mobile"), "layer")]
    for op in layer_ops[1::6][:6]:  # a spread of sizes and kinds
        out.append(Item(op.key, op, "op", {}))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", default="ort")
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--core", type=int, default=None)
    args = ap.parse_args()
    its = items()
    result = {"machine": {"cpu": hostinfo.cpu_model(), "cores": len(hostinfo.allowed_cores()),
                          "platform": platform.platform()},
              "versions": hostinfo.package_versions(), "runtime": args.runtime, "repeats": args.repeats,
              "protocol": Protocol().as_dict(), "timings": {}}
    for timing in ("plain", "paired"):
        dev = CpuDevice(args.runtime, core=args.core, timing=timing)
        fp = dev.fingerprint()
        medians, walls = {it.key: [] for it in its}, []
        for rep in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                store = ProfileStore(Path(tmp) / "s.db", fp)
                t0 = time.perf_counter()
                run_items(dev, its, store, Protocol(seed=rep), progress=False)
                walls.append(time.perf_counter() - t0)
                for key, r in store.results().items():
                    medians[key].append(r["ms"])
                store.close()
        dev.close()
        rows = {k: {"ms": v, "cv_pct": 100 * statistics.pstdev(v) / statistics.mean(v)} for k, v in medians.items()}
        result["timings"][timing] = {"items": rows, "wall_s_per_repeat": statistics.median(walls),
                                     "reference_ms": fp.get("reference_ms")}
    print(f"{'item':58} {'plain cv%':>9} {'paired cv%':>10}")
    for it in its:
        p, q = (result["timings"][t]["items"][it.key]["cv_pct"] for t in ("plain", "paired"))
        print(f"{it.key[:58]:58} {p:9.2f} {q:10.2f}")
    print("wall s per repeat: plain {:.1f}, paired {:.1f}".format(
        *(result["timings"][t]["wall_s_per_repeat"] for t in ("plain", "paired"))))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
