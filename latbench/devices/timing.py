"""Host-side timing loops shared by the in-process runtimes (ORT, torch, LiteRT).

`time_callable` times runs one by one (plain timing). `time_paired` times blocks of runs, each
between two runs of a fixed reference workload, and scales every block by how fast the
reference ran around it (paired timing): on a shared host whose speed jumps by 10–40% from one
second to the next (other tenants), the ratio item/reference is
stable where the raw time is not — the repeatable-measurement idea of interleaving trials in
cloud environments (Abedi & Brecht, ICPE 2017). Results are in "ms at the reference's
calibrated speed": `Reference.ms`, measured once per machine and runtime and recorded in the
device fingerprint.
"""
from __future__ import annotations

import math
import time

from .base import Sample


def _warm_up(run, warmup: int, min_warmup_s: float) -> float:
    """Run at least `warmup` calls and `min_warmup_s` seconds; return the typical call time (s):
    the median of the second half (the first calls after loading a model are slow), or 0.0 when
    no warm-up was asked for (then nothing is sized from it)."""
    clock = time.perf_counter
    start = last = clock()
    durations = []
    while len(durations) < warmup or last - start < min_warmup_s:
        run()
        now = clock()
        durations.append(now - last)
        last = now
    if not durations:
        return 0.0
    tail = sorted(durations[len(durations) // 2:])
    return tail[len(tail) // 2]


def _sized(runs: int, per_call_s: float, min_timed_s: float, max_runs: int | None) -> int:
    if min_timed_s <= 0 or per_call_s <= 0:
        return runs
    cap = max_runs if max_runs is not None else 100 * runs
    return max(runs, min(cap, math.ceil(min_timed_s / per_call_s - 1e-6)))


def time_callable(run, runs: int, warmup: int, min_warmup_s: float = 0.0, min_timed_s: float = 0.0,
                  max_runs: int | None = None) -> Sample:
    """Warm up (at least `warmup` calls and `min_warmup_s` seconds), then time `runs` calls one by one.

    With `min_timed_s`, more than `runs` calls are timed when the warm-up shows that `runs` calls
    would take less than `min_timed_s` (the count is fixed before timing starts); `max_runs` caps
    it (default 100 x runs).
    """
    per_call = _warm_up(run, warmup, min_warmup_s)
    runs = _sized(runs, per_call, min_timed_s, max_runs)
    samples = [0.0] * runs
    clock_ns = time.perf_counter_ns
    t_all = time.perf_counter()
    for i in range(runs):
        t0 = clock_ns()
        run()
        samples[i] = (clock_ns() - t0) / 1e6
    return Sample(samples_ms=samples, timed_s=time.perf_counter() - t_all)


class Reference:
    """The fixed workload of paired timing: `run` one inference, `ms` its calibrated latency."""

    def __init__(self, run, ms: float, key: str = ""):
        self.run, self.ms, self.key = run, float(ms), key

    def time_once(self) -> float:
        """One timed run after one untimed run: whatever ran before evicted the reference from the
        caches, and a cold run would measure that eviction (worse after bigger items), not the host."""
        self.run()
        t0 = time.perf_counter_ns()
        self.run()
        return (time.perf_counter_ns() - t0) / 1e6

    def scale(self, before_ms: float, after_ms: float) -> float:
        """Factor taking a time measured between two reference runs to calibrated speed."""
        return self.ms / math.sqrt(before_ms * after_ms)


def time_paired(run, reference: Reference, runs: int, warmup: int, min_warmup_s: float = 0.0,
                min_timed_s: float = 0.0, max_runs: int | None = None, block_s: float = 0.001,
                min_blocks: int = 5) -> Sample:
    """Paired timing: R B R B ... R, where a block B is `k` back-to-back calls of `run` lasting about
    `block_s` and R one reference run (each preceded by one untimed call, so both are timed warm).
    The calls add up to `runs` (or more, sized like `time_callable`), in at least `min_blocks`
    blocks. Each sample is a block's time per call × reference.ms / √(R before · R after);
    `runs_per_sample` is `k`.
    `timed_s` counts the item's blocks only (the reference runs are the method's overhead).
    """
    per_call = _warm_up(run, warmup, min_warmup_s)
    _warm_up(reference.run, 3, 0.0)
    k = max(1, math.ceil(block_s / per_call - 1e-6)) if per_call > 0 else 1
    calls = _sized(runs, per_call, min_timed_s, max_runs)
    blocks = max(min_blocks, math.ceil(calls / k - 1e-6))
    samples = [0.0] * blocks
    clock_ns = time.perf_counter_ns
    timed_ns = 0
    before = reference.time_once()
    for i in range(blocks):
        run()  # untimed: the reference just evicted the item from the caches (plain timing is warm too)
        t0 = clock_ns()
        for _ in range(k):
            run()
        took = clock_ns() - t0
        after = reference.time_once()
        timed_ns += took
        samples[i] = took / 1e6 / k * reference.scale(before, after)
        before = after
    return Sample(samples_ms=samples, runs_per_sample=k, timed_s=timed_ns / 1e9)
