"""Host-side timing loop shared by the in-process runtimes (ORT, torch, LiteRT)."""
from __future__ import annotations

import time

from .base import Sample


def time_callable(run, runs: int, warmup: int, min_warmup_s: float = 0.0) -> Sample:
    """Warm up (at least `warmup` calls and `min_warmup_s` seconds), then time `runs` calls one by one."""
    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < min_warmup_s:
        run()
        done += 1
    samples = []
    t_all = time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        run()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return Sample(samples_ms=samples, timed_s=time.perf_counter() - t_all)
