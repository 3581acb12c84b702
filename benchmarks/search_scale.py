"""Benchmark: how a search scales past one process. Throughput of the supernet step (training images
per second over all processes: each step also scores 4x as many held-out images in forward passes)
and peak memory per process, measured on real `search.registry.run_search` runs.

    python benchmarks/search_scale.py cpu                 # 1 and 2 processes (gloo), channels_last off/on
    python benchmarks/search_scale.py cpu --steps 12 --procs 1,2 --no-layouts    # a short smoke
    python benchmarks/search_scale.py gpu                 # <= 8 min on one CUDA GPU (see below)

`cpu`: the built-in digits proxy (in memory) at the CLI's default proxy scale; 1 process in-process
style (plain python), N processes through torchrun --standalone (gloo); each process 1 torch thread.
With --layouts, 1 process is also run with channels_last to decide its default on CPUs.
`gpu`: writes a synthetic ImageNet-layout folder of mixed-size JPEGs (10 classes) to a temp dir,
then runs single-process CUDA searches of 50 steps at --gpu-resolution (default 224, width 1.0,
batch 128) streamed by --workers DataLoader workers, with and without --amp (bf16), and with
channels_last; where two GPUs exist, the same through torchrun with NCCL on 2 processes. Every run
has its own time limit so the whole script fits in 8 minutes; a run that fails or times out is
reported as such, not dropped. `--allow-cpu` runs the gpu schedule on a CPU at tiny sizes
(to check the script itself).

Throughput excludes the first `--skip` steps (start-up, DataLoader warm-up, cudnn autotune). Peak
memory: the process's max RSS, and on CUDA torch.cuda.max_memory_allocated. Prints a table, writes
benchmarks/results/search_scale-{cpu,gpu}.json with machine and versions.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# ------------------------------------------------------------------------- worker (one per process)
def worker(args) -> None:
    import torch

    from search.registry import make_config, run_search

    opts = json.loads(args.options)
    cfg = make_config("tunas", progress=False, **opts)
    result = run_search(cfg, write=False)
    times = [t["time_s"] for t in result["trajectory"]]
    rank = int(os.environ.get("RANK", "0"))
    cuda = torch.cuda.is_available()
    rec = {"rank": rank, "world": result["world_size"], "steps": len(times), "times": times,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
           "batch_size": cfg.batch_size, "rl_batch_size": cfg.rl_batch_size, "wall_s": result["wall_s"],
           "latency_ms": result["latency_ms"]}
    Path(args.record).with_name(f"{Path(args.record).stem}-rank{rank}.json").write_text(json.dumps(rec))


def run_case(name: str, procs: int, options: dict, skip: int, limit_s: float, threads_env: str = "1") -> dict:
    """One search in `procs` processes; images/s over steps after `skip`, memory per process."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "rec.json"
        opts = json.dumps({**options, "out": str(Path(tmp) / "out")})
        me = [str(Path(__file__).resolve()), "worker", "--options", opts, "--record", str(record)]
        if procs == 1:
            cmd = [sys.executable, *me]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs), *me]
        env = dict(os.environ, OMP_NUM_THREADS=threads_env)
        t0 = time.time()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO), env=env, timeout=limit_s)
        except subprocess.TimeoutExpired:
            return {"case": name, "procs": procs, "status": f"timed out after {limit_s:.0f} s"}
        if r.returncode != 0:
            return {"case": name, "procs": procs, "status": f"failed (exit {r.returncode})",
                    "stderr_tail": r.stderr[-1500:]}
        recs = [json.loads(p.read_text()) for p in sorted(Path(tmp).glob("rec-rank*.json"))]
    times = recs[0]["times"]
    k = min(skip, len(times) - 2)
    span = times[-1] - times[k]
    steps = len(times) - 1 - k
    batch, world = recs[0]["batch_size"], recs[0]["world"]
    return {"case": name, "procs": procs, "status": "ok", "steps_timed": steps,
            "s_per_step": span / steps, "train_images_per_s": steps * batch * world / span,
            "heldout_images_per_s": steps * recs[0]["rl_batch_size"] * world / span,
            "peak_rss_mb_per_process": [round(r["peak_rss_mb"]) for r in recs],
            "cuda_peak_mb_per_process": [None if r["cuda_peak_mb"] is None else round(r["cuda_peak_mb"]) for r in recs],
            "process_wall_s": round(time.time() - t0, 1), "options": options}


def write_folder(root: Path, classes: int, per_class: int, low: int, high: int, seed: int = 0) -> Path:
    """Synthetic ImageNet layout: mixed-size JPEGs, class c brighter than class c-1."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        d = root / f"n{c:08d}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            w, h = (int(v) for v in rng.integers(low, high, 2))
            a = np.clip(rng.normal(30 + 20 * c, 40, (h, w, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(d / f"{i}.JPEG", quality=85)
    return root


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M")}
    try:
        info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                                 if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def print_table(rows) -> None:
    print(f"{'case':28} {'procs':>5} {'s/step':>8} {'train img/s':>11} {'held-out img/s':>14} "
          f"{'RSS MB/proc':>14} {'CUDA MB/proc':>13}")
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['case']:28} {r['procs']:>5}  {r['status']}")
            continue
        print(f"{r['case']:28} {r['procs']:>5} {r['s_per_step']:>8.3f} {r['train_images_per_s']:>11.1f} "
              f"{r['heldout_images_per_s']:>14.1f} {'/'.join(map(str, r['peak_rss_mb_per_process'])):>14} "
              f"{'/'.join(str(v) for v in r['cuda_peak_mb_per_process']):>13}")


def cpu(args) -> dict:
    base = {"target_ms": 84.0, "steps": args.steps, "batch_size": args.batch_size, "threads": 1,
            "checkpoint_every": 0}
    rows = []
    for n in args.procs:
        rows.append(run_case("cpu gloo, digits", n, base, args.skip, args.limit))
    if args.layouts:
        rows.append(run_case("cpu, channels_last", 1, {**base, "channels_last": True}, args.skip, args.limit))
    return {"kind": "cpu", "rows": rows}


def gpu(args) -> dict:
    import torch

    t_start = time.time()
    n_gpu = torch.cuda.device_count()
    if n_gpu == 0 and not args.allow_cpu:
        raise SystemExit("no CUDA GPU: the gpu schedule needs one (--allow-cpu checks the script at tiny sizes)")
    tiny = n_gpu == 0
    res, width, batch = (16, 0.125, 8) if tiny else (args.gpu_resolution, args.gpu_width, args.gpu_batch)
    steps = 6 if tiny else args.gpu_steps
    with tempfile.TemporaryDirectory() as tmp:
        per_class = 20 if tiny else args.gpu_images_per_class
        folder = write_folder(Path(tmp) / "imgs", 10, per_class, 24 if tiny else 160, 48 if tiny else 400)
        base = {"target_ms": 84.0, "steps": steps, "batch_size": batch, "resolution": res, "width": width,
                "data": str(folder), "workers": args.workers, "threads": None, "checkpoint_every": 0,
                "holdout": 0.2 if not tiny else 0.5}
        cases = [("cuda fp32", 1, {**base, "amp": False, "channels_last": False}),
                 ("cuda fp32 channels_last", 1, {**base, "amp": False, "channels_last": True}),
                 ("cuda bf16 (--amp)", 1, {**base, "amp": True, "channels_last": False}),
                 ("cuda bf16 channels_last", 1, {**base, "amp": True, "channels_last": True})]
        if n_gpu >= 2:
            cases.append(("nccl bf16 channels_last", 2, {**base, "amp": True, "channels_last": True}))
        if tiny:
            cases = [(f"(cpu check) {name}", procs, opts) for name, procs, opts in cases]
        rows = []
        for name, procs, opts in cases:
            left = args.budget - (time.time() - t_start)
            if left < 30:
                rows.append({"case": name, "procs": procs, "status": "skipped: the 8-minute budget is spent"})
                continue
            rows.append(run_case(name, procs, opts, min(args.skip, steps - 2), min(args.limit, left - 10),
                                 threads_env="4"))
            print_table(rows[-1:])
    if n_gpu < 2:
        rows.append({"case": "nccl (2 processes)", "procs": 2, "status": f"not run: {n_gpu} GPU(s) here"})
    return {"kind": "gpu", "rows": rows, "folder": {"classes": 10, "images_per_class": per_class}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--options", required=True)
    w.add_argument("--record", required=True)
    c = sub.add_parser("cpu")
    c.add_argument("--steps", type=int, default=40)
    c.add_argument("--batch-size", type=int, default=32)
    c.add_argument("--procs", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2])
    c.add_argument("--layouts", action=argparse.BooleanOptionalAction, default=True)
    g = sub.add_parser("gpu")
    g.add_argument("--gpu-steps", type=int, default=50)
    g.add_argument("--gpu-resolution", type=int, default=224)
    g.add_argument("--gpu-width", type=float, default=1.0)
    g.add_argument("--gpu-batch", type=int, default=128)
    g.add_argument("--gpu-images-per-class", type=int, default=300)
    g.add_argument("--workers", type=int, default=8)
    g.add_argument("--budget", type=float, default=480.0, help="seconds for the whole gpu schedule")
    g.add_argument("--allow-cpu", action="store_true")
    for p in (c, g):
        p.add_argument("--skip", type=int, default=5)
        p.add_argument("--limit", type=float, default=300.0, help="seconds per run")
        p.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.mode == "worker":
        return worker(args)
    report = {"machine": machine(), "command": " ".join(["python", "benchmarks/search_scale.py", *sys.argv[1:]])}
    report.update(cpu(args) if args.mode == "cpu" else gpu(args))
    print_table(report["rows"])
    out = Path(args.out or REPO / "benchmarks" / "results" / f"search_scale-{args.mode}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
