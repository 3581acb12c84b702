"""Host-side timing loop shared by the in-process runtimes (ORT, torch, LiteRT)."""
from __future__ import annotations

import math
import time

from .base import Sample


def time_callable(run, runs: int, warmup: int, min_warmup_s: float = 0.0, min_timed_s: float = 0.0,
                  max_runs: int | None = None) -> Sample:
    """Warm up (at least `warmup` calls and `min_warmup_s` seconds), then time `runs` calls one by one.

    With `min_timed_s`, more than `runs` calls are timed when the warm-up shows that `runs` calls
    would take less than `min_timed_s`: the count is fixed before timing starts, from the median
    of the second half of the warm-up calls (the first calls after loading a model are slow);
    `max_runs` caps it (default 100 x runs).
    """
    clock = time.perf_counter
    start = last = clock()
    durations = []
    while len(durations) < warmup or last - start < min_warmup_s:
        run()
        now = clock()
        durations.append(now - last)
        last = now
    if min_timed_s > 0 and durations:
        tail = sorted(durations[len(durations) // 2:])
        per_call = tail[len(tail) // 2]
        if per_call > 0:
            cap = max_runs if max_runs is not None else 100 * runs
            runs = max(runs, min(cap, math.ceil(min_timed_s / per_call)))
    samples = [0.0] * runs
    clock_ns = time.perf_counter_ns
    t_all = clock()
    for i in range(runs):
        t0 = clock_ns()
        run()
        samples[i] = (clock_ns() - t0) / 1e6
    return Sample(samples_ms=samples, timed_s=clock() - t_all)
