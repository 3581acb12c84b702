"""Controller schedules of a TuNAS search (reference: tunas/mobile_architecture_search.py, custom_layers.py).

- RL learning rate: 0 before `delay * steps`; from there base * growth ** progress with progress
  going 0 -> 1 linearly to the last step (TuNAS appendix E.2: base at 25%, 10x base at the end).
- Op / filter warmup probability: 1 at step 0, decaying linearly to 0 at `fraction * steps`.
"""
from __future__ import annotations


def rl_delay_steps(total: int, delay: float = 0.25) -> int:
    return int(delay * total)


def rl_learning_rate(step: int, total: int, base: float, delay: float = 0.25, growth: float = 10.0) -> float:
    """RL lr at 0-based `step` of `total`: 0, then base rising exponentially to growth x base."""
    start = rl_delay_steps(total, delay)
    if step < start:
        return 0.0
    last = max(1, (total - 1) - start)  # the last step gets exactly growth x base
    progress = min(1.0, (step - start) / last)
    return base * growth ** progress


def warmup_probability(step: int, total: int, fraction: float = 0.25) -> float:
    """Probability of enabling all ops (or all filters): 1 -> 0 linearly over `fraction` of the steps."""
    n = int(fraction * total)
    if n <= 0:
        return 0.0
    return max(0.0, 1.0 - step / n)
