"""Per-node timings of a whole network from the runtime's own profiler (for `context` LUTs).

Each function returns a list of rounds; a round is a list of {"name", "layer", "part", "ms"}
(ms per inference), where layer/part come from the node name (`/L3/dw/Conv` -> 3, "dw").
With a paired-timing `reference` (latbench.devices.timing.Reference), the reference runs before
the first and after every profiled run, and each run's node times are scaled like a paired block.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict

from ..build import parse_layer_name


def node_slot(name: str):
    """(layer index, part) encoded in a node/module name, or (None, "") for unmapped nodes."""
    return parse_layer_name(name) or (None, "")


def _run_scales(reference):
    """(before each run, after each run) hooks and the per-run scale list they fill (1.0 without
    a reference)."""
    scales = []
    if reference is None:
        return (lambda: None), (lambda: scales.append(1.0)), scales
    last = []

    def before_first():
        if not last:
            last.append(reference.time_once())

    def after():
        now = reference.time_once()
        scales.append(reference.scale(last[-1], now))
        last.append(now)
    return before_first, after, scales


def ort_node_profile(onnx_path, runs: int = 20, warmup: int = 5, reference=None) -> list:
    """ONNX Runtime profiling (all optimisations on, 1 thread): kernel time per node per run."""
    import bisect

    from .ort_runtime import ort_session

    before, after, scales = _run_scales(reference)
    with tempfile.TemporaryDirectory() as tmp:
        sess, feeds = ort_session(onnx_path, profile_prefix=os.path.join(tmp, "prof"))
        for _ in range(warmup):
            sess.run(None, feeds)
        for _ in range(runs):
            before()
            sess.run(None, feeds)
            after()
        path = sess.end_profiling()
        with open(path) as fh:
            events = json.load(fh)
    # keep only the timed runs: the last `runs` model_run events bound them
    starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")[-runs:]
    t0 = starts[0] if starts else 0
    per_node = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= t0:
            i = max(0, bisect.bisect_right(starts, e["ts"]) - 1)
            per_node[e["name"][: -len("_kernel_time")]] += e["dur"] / 1000.0 * (scales[i] if i < len(scales) else 1.0)
    return [[dict(zip(("layer", "part"), node_slot(n)), name=n, ms=ms / runs) for n, ms in per_node.items()]]


def torch_module_profile(module, inputs, runs: int = 20, warmup: int = 5, cuda: bool = False,
                         reference=None) -> list:
    """Forward hooks on the L{i} children (and their parts): wall time (CPU) or CUDA events (GPU)."""
    import torch

    before, after, scales = _run_scales(reference)
    timings = defaultdict(float)  # this run's times; added, scaled, to `total` after each run
    total = defaultdict(float)
    stamps = {}
    handles = []
    # exactly the layers (`L3`) and their parts (`L3.dw`): hooking deeper modules would count time twice
    named = [(n, m) for n, m in module.named_modules() if node_slot(n)[0] is not None and
             (n.count(".") == 0 or (n.count(".") == 1 and node_slot(n)[1]))]

    def pre(name):
        def hook(_m, _inp):
            if cuda:
                ev = torch.cuda.Event(enable_timing=True)
                ev.record()
                stamps[name] = ev
            else:
                stamps[name] = time.perf_counter()
        return hook

    def post(name):
        def hook(_m, _inp, _out):
            if cuda:
                ev = torch.cuda.Event(enable_timing=True)
                ev.record()
                stamps[name] = (stamps[name], ev)
            else:
                timings[name] += (time.perf_counter() - stamps[name]) * 1000.0
        return hook

    with torch.inference_mode():
        for _ in range(warmup):
            module(*inputs)
        for n, m in named:
            handles += [m.register_forward_pre_hook(pre(n)), m.register_forward_hook(post(n))]
        try:
            for _ in range(runs):
                before()
                module(*inputs)
                if cuda:
                    torch.cuda.synchronize()
                    for n, (a, b) in list(stamps.items()):
                        timings[n] += a.elapsed_time(b)
                    stamps.clear()
                after()
                for n, ms in timings.items():
                    total[n] += ms * scales[-1]
                timings.clear()
        finally:
            for h in handles:
                h.remove()
    rows = []
    # a block's own time minus its parts' time is charged to the block as a whole (part "")
    parts = defaultdict(float)
    for n, ms in total.items():
        layer, part = node_slot(n)
        if part:
            parts[layer] += ms
    for n, ms in total.items():
        layer, part = node_slot(n)
        own = ms - (parts[layer] if not part else 0.0)
        rows.append({"name": n, "layer": layer, "part": part, "ms": max(own, 0.0) / runs})
    return [rows]
