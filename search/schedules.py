"""The weight learning-rate schedule every search's shared weights train with: linear warmup, then
cosine decay (TuNAS appendix E.1; TF-NAS and NetAdaptV2 use cosine decay too)."""
from __future__ import annotations

import math


def weight_learning_rate(step: int, total: int, peak: float, warmup: float = 0.025) -> float:
    """Linear warmup from 0 over `warmup * total` steps, then cosine decay to 0 at `total`."""
    n = int(warmup * total)
    if n > 0 and step < n:
        return peak * (step + 1) / n
    span = max(1, total - n)
    return 0.5 * peak * (1.0 + math.cos(math.pi * min(1.0, (step - n) / span)))
