"""Width level, *elasticity scaling*: fit the derived arch's mid widths to the latency target.

The derived arch (argmax op per block, argmax depth per stage) is priced with its current mid
widths. Too slow: the mid widths of all stages shrink together, every block by a step
proportional to its own width (round(mid / smallest mid) channels), until the latency is at
most T or every block sits on its bound. Then the widths grow again, first over stages 1..6
(only when nothing had to shrink), then 2..6, 3..6, ..., 6: each pass keeps the last setting
that still fits T, so the later, finer passes (fewer blocks, smaller steps) close the gap from
below. Every width stays within [max/2, max] of its op. This is the procedure of TF-NAS's
reference code (train_search.py: fit_mc_num_by_latency and its calls), except that a growing
pass that stops because every block reached its bound keeps that last step when it still fits
(the reference drops it); only the derived ops' widths change, the other ops keep theirs.
"""
from __future__ import annotations


def _clip(mid: int, max_mid: int) -> tuple[int, bool]:
    """(clipped mid, still movable): TF-NAS's bound_clip with bounds [max // 2, max]."""
    lo = max_mid // 2
    if mid <= lo:
        return lo, False
    if mid >= max_mid:
        return max_mid, False
    return mid, True


def _fit(indices, blocks, mids, ops, price, target: float, sign: int):
    """One pass over `blocks` (positions): shrink (sign -1) until <= target, or grow (+1) while <= target."""
    cur = [list(r) for r in mids]
    lat = price(indices, cur)
    if not blocks:
        return cur, lat
    widths = [cur[pos][indices[pos]] for pos in blocks]
    smallest = min(widths)
    steps = [max(1, int(round(w / smallest))) for w in widths]
    movable = [True] * len(blocks)
    new, new_lat = [list(r) for r in cur], lat
    while any(movable) and sign * new_lat <= sign * target:
        cur, lat = [list(r) for r in new], new_lat
        for i, pos in enumerate(blocks):
            op = indices[pos]
            new[pos][op], movable[i] = _clip(cur[pos][op] + sign * steps[i], ops[pos][op].max_mid)
        new_lat = price(indices, new)
    if sign < 0 or new_lat <= target:  # shrinking keeps the first setting that fits (or the bounds);
        return new, new_lat            # growing stopped by the bounds keeps its last step when it fits
    return cur, lat


def fit_widths(indices, kept_by_stage: list[list[int]], widths, ops, price, target: float) -> tuple[list, float, str]:
    """(new mids, latency, 'shrink' | 'expand' | 'none') for the derived arch `indices`.

    kept_by_stage: the derived arch's kept block positions per stage; price(indices, mids) -> ms."""
    mids = [list(r) for r in widths.mids]
    before = price(indices, mids)
    n = len(kept_by_stage)
    every = [pos for st in kept_by_stage for pos in st]
    if before > target:
        mids, lat = _fit(indices, every, mids, ops, price, target, -1)
        action = "shrink"
    elif before < target:
        mids, lat = _fit(indices, every, mids, ops, price, target, +1)
        action = "expand"
    else:
        return mids, before, "none"
    for start in range(1, n):
        blocks = [pos for st in kept_by_stage[start:] for pos in st]
        mids, lat = _fit(indices, blocks, mids, ops, price, target, +1)
    return mids, lat, action
