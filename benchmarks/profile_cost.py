"""Profiling cost (DESIGN §10): wall time to profile a whole search space on `cpu`, per runtime.

For each runtime (ort, torch, tflite) the whole space's ops (default: `proxylessnas`, block
granularity, plus the overhead probe) are profiled with latbench.measure.profiling.profile_items and the
default Protocol into a fresh profile store in a temp dir, twice:

- cold: a fresh, empty model cache (LATBENCH_CACHE), so every model is built/converted;
- warm: a second fresh store with the same, now full, cache (what a re-profile costs).

Reported per run: wall seconds, seconds inside the timed runs (store.timed_seconds()), the
overhead ratio wall / timed, where the rest went (warm-up runs: time inside device.measure not in
timed runs; other: building/loading models, the store, conditions, imports), the number of ops,
the measured rounds (planned: items x rounds; more = noisy items re-measured), and the time per op.
Prints a table and writes benchmarks/results/profile_cost.json with machine and versions.

Goals: the whole space in <= 5 minutes on one core with ort, and wall <= 1.5 x timed (warm cache).

    python benchmarks/profile_cost.py                      # everything (several minutes)
    python benchmarks/profile_cost.py --runtimes ort --limit 10
    python benchmarks/profile_cost.py --cprofile ort       # also write a cProfile of the warm ort run
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.devices.hostinfo import cpu_model, package_versions  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "profile_cost.json"
RUNTIMES = ("ort", "torch", "tflite")


def machine() -> dict:
    return {"cpu_model": cpu_model(), "cpus_online": os.cpu_count(),
            "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(), "python": platform.python_version(),
            "versions": package_versions()}


def run_once(runtime: str, space, granularity: str, limit, db: Path, cprofile_to: Path | None = None) -> dict:
    """One profile of the space into a fresh store `db`; LATBENCH_CACHE is set by the caller."""
    from latbench.devices import get_device
    from latbench.measure.profiling import op_items, profile_items
    from latbench.measure.protocol import Protocol
    from latbench.measure.store import ProfileStore

    dev = get_device("cpu", runtime)
    items = op_items(space, granularity, limit)
    in_measure = [0.0]  # wall seconds inside device.measure: warm-up + timed runs
    measure = dev.measure

    def timed_measure(*a, **k):
        t = time.perf_counter()
        try:
            return measure(*a, **k)
        finally:
            in_measure[0] += time.perf_counter() - t

    dev.measure = timed_measure
    prof = None
    if cprofile_to is not None:
        import cProfile
        prof = cProfile.Profile()
    t0 = time.perf_counter()
    if prof is not None:
        prof.enable()
    out = profile_items([dev], items, db, Protocol(), progress=sys.stderr.isatty())
    if prof is not None:
        prof.disable()
    wall = time.perf_counter() - t0
    if prof is not None:
        prof.dump_stats(str(cprofile_to))
    st = ProfileStore(db)
    n_rounds = st.db.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
    n_runs = sum(len(json.loads(s)) * w for s, w in st.db.execute("SELECT samples, runs_per_sample FROM rounds"))
    st.close()
    timed = out["timed_s"]
    return {"runtime": runtime, "items": len(items), "ops": len(items) - 1, "measured": out["measured"],
            "rounds": n_rounds, "planned_rounds": len(items) * Protocol().rounds, "timed_runs": n_runs,
            "wall_s": round(wall, 3), "timed_s": round(timed, 3),
            "warmup_s": round(in_measure[0] - timed, 3),  # device.measure minus its timed runs
            "other_s": round(wall - in_measure[0], 3),  # model build/load, store, conditions, imports
            "ratio": round(wall / timed, 3) if timed > 0 else None,
            "wall_per_op_s": round(wall / max(1, len(items)), 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="proxylessnas")
    ap.add_argument("--granularity", default="block", choices=["block", "layer"])
    ap.add_argument("--limit", type=int, default=None, help="only the first N ops (default: all)")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--cprofile", default="", help="comma-separated runtimes whose warm run is cProfiled")
    ap.add_argument("--no-first-round-sizing", action="store_true",
                    help="time a fixed Protocol.runs in each item's first round (the behaviour before the "
                         "first round was sized to min_round_s from the warm-up), for comparison")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.no_first_round_sizing:
        from latbench.devices.cpu import CpuDevice
        CpuDevice.supports_min_timed_s = False

    from latbench.spaces import get_space

    space = get_space(args.space)
    runtimes = [r for r in args.runtimes.split(",") if r]
    prof_for = {r for r in args.cprofile.split(",") if r}
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="latbench-profile-cost-") as tmp:
        tmp = Path(tmp)
        for rt in runtimes:
            cache = tmp / f"cache-{rt}"
            os.environ["LATBENCH_CACHE"] = str(cache)  # fresh, empty: the cold run builds every model
            for phase in ("cold", "warm"):
                cp = None
                if phase == "warm" and rt in prof_for:
                    cp = args.out.parent / f"profile_cost-{rt}-warm.prof"
                    cp.parent.mkdir(parents=True, exist_ok=True)
                row = run_once(rt, space, args.granularity, args.limit, tmp / f"{rt}-{phase}.db", cp)
                row["cache"] = phase
                rows.append(row)
                print(f"  {rt:6} {phase:4}: wall {row['wall_s']:8.1f} s, timed {row['timed_s']:7.1f} s, "
                      f"ratio {row['ratio']}", file=sys.stderr, flush=True)
    hdr = (f"{'runtime':8}{'cache':6}{'ops':>5}{'rounds':>8}{'wall s':>9}{'timed s':>9}{'warmup s':>10}{'other s':>9}"
           f"{'wall/timed':>12}{'s/op':>7}")
    print(f"profile cost: space {args.space} ({args.granularity}), cpu, default Protocol, one core")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['runtime']:8}{r['cache']:6}{r['ops']:>5}{r['rounds']:>8}{r['wall_s']:>9.1f}{r['timed_s']:>9.1f}"
              f"{r['warmup_s']:>10.1f}{r['other_s']:>9.1f}{r['ratio']:>12.2f}{r['wall_per_op_s']:>7.2f}")
    from latbench.measure.protocol import Protocol

    goals = {}
    for r in rows:
        if r["runtime"] == "ort":
            whole = args.limit is None
            goals.setdefault("ort_whole_space_le_300s", {})[r["cache"]] = r["wall_s"] <= 300 if whole else None
        if r["cache"] == "warm":
            goals.setdefault("warm_ratio_le_1.5", {})[r["runtime"]] = r["ratio"] is not None and r["ratio"] <= 1.5
    result = {"benchmark": "profile_cost", "space": args.space, "granularity": args.granularity,
              "limit": args.limit, "protocol": Protocol().as_dict(),
              "first_round_sizing": not args.no_first_round_sizing, "device": "cpu (1 thread, pinned to one core)",
              "machine": machine(), "loadavg_1_5_15": {"before": load_before, "after": os.getloadavg()},
              "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": rows, "goals": goals}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    print(f"machine: {m['cpu_model']}, {m['cpus_online']} cpus (affinity {m['affinity']}), python {m['python']}; "
          f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (other work on the machine "
          "inflates every number)")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    print(f"goals: {json.dumps(goals)}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
