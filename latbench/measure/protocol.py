"""The measurement protocol (DESIGN §5), the same for every device.

Items are measured in `rounds`; each round visits every unfinished item once, in a freshly
shuffled order, so slow drift (thermal, frequency, background load) spreads over all items
instead of biasing the ones measured last. Each round is one `device.measure` call (warmup +
timed runs) stored with the conditions read before and after it. A round times at least
`runs` runs and, for fast items, enough to last `min_round_s` (sized from the item's previous
round, or, for its first round on devices that support it, from the speed of the warm-up).
Items whose robust CV is above `max_cv` after the planned rounds get up to `extra_rounds` more.

With `precision` (percent), a fixed count of rounds is a minimum, not the plan: items whose level
is not yet known to ±`precision` % (95 % CI from their round medians, stats.level_ci_pct) get
more rounds, interleaved and reshuffled as before, until each meets it, reaches `max_rounds`, or
the run has spent `budget_s` seconds — precision in place of counts, as pyperf and Google
Benchmark report their uncertainty.
"""
from __future__ import annotations

import math
import random
import sys
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass

from ..stats import level_ci_pct, summarize


@dataclass
class Protocol:
    warmup: int = 10  # warm-up runs per round (at least)
    min_warmup_s: float = 0.01  # and at least this long
    runs: int = 20  # timed runs per round (at least)
    min_round_s: float = 0.03  # rounds time enough runs to last this long (fast ops get more runs)
    rounds: int = 3
    max_cv: float = 5.0  # % robust CV above which an item is re-measured
    extra_rounds: int = 2
    seed: int = 0
    precision: float | None = None  # % half-width of the 95 % CI of each item's level to reach (None: fixed rounds)
    budget_s: float | None = None  # with precision: no new round starts after the run has taken this long
    max_rounds: int = 30  # with precision: rounds per item at most

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Item:
    key: str
    target: object  # Arch or Op
    kind: str  # "op" or "arch"
    meta: dict


class _PreparedCache:
    """Keeps the last `size` prepared models so rounds reuse them without unbounded memory; a
    device that says what a prepared model holds (`prepared_nbytes`, e.g. GPU memory) is bounded by
    its `prepared_cache_bytes` instead (a few large networks can fill a GPU a count would allow)."""

    def __init__(self, device, size: int = 512):
        self.device, self.size, self.data = device, size, OrderedDict()
        self.nbytes = getattr(device, "prepared_nbytes", None)
        self.budget = device.prepared_cache_bytes if self.nbytes is not None else None
        self.sizes, self.total = {}, 0

    def get(self, item: Item):
        if item.key in self.data:
            self.data.move_to_end(item.key)
            return self.data[item.key]
        prepared = self.device.prepare(item.target)
        self.data[item.key] = prepared
        if self.nbytes is None:
            if len(self.data) > self.size:
                self.data.popitem(last=False)
            return prepared
        self.sizes[item.key] = self.nbytes(prepared)
        self.total += self.sizes[item.key]
        while self.total > self.budget and len(self.data) > 1:  # always keep the one in use
            old, _ = self.data.popitem(last=False)
            self.total -= self.sizes.pop(old)
        return prepared


def measure_once(device, prepared, protocol: Protocol, runs: int | None = None, size_by_warmup: bool = False):
    """One round of one item, with conditions before and after.

    `size_by_warmup` (for a round with no earlier timing of the item): a device that supports it
    (`supports_min_timed_s`) times enough runs to last `protocol.min_round_s`, judged from the speed
    of the warm-up; other devices time `runs`.
    """
    before = device.conditions()
    runs = runs or protocol.runs
    if size_by_warmup and protocol.min_round_s > 0 and getattr(device, "supports_min_timed_s", False):
        sample = device.measure(prepared, runs, protocol.warmup, protocol.min_warmup_s,
                                min_timed_s=protocol.min_round_s, max_runs=100 * protocol.runs)
    else:
        sample = device.measure(prepared, runs, protocol.warmup, protocol.min_warmup_s)
    sample.conditions = {**sample.conditions, "before": before, "after": device.conditions()}
    return sample


def run_items(device, items: list, store, protocol: Protocol, progress: bool = True, desc: str = "profile") -> None:
    """Measure `items` into `store` until each has `protocol.rounds` rounds (resuming what is there)."""
    from tqdm import tqdm

    started = time.monotonic()
    for it in items:
        store.register(it.key, it.kind, it.meta)
    done = store.rounds_done()
    rng = random.Random(protocol.seed)
    cache = _PreparedCache(device)
    todo_total = sum(max(0, protocol.rounds - done.get(it.key, 0)) for it in items)
    bar = tqdm(total=todo_total, desc=desc, unit="item", file=sys.stderr, disable=not progress, dynamic_ncols=True)

    typical = {}  # key -> ms of its last round: sizes later rounds to last min_round_s

    def do(it):
        n = done.get(it.key, 0)
        runs = protocol.runs
        known = it.key in typical and typical[it.key] > 0
        if known:
            runs = max(runs, min(100 * protocol.runs, math.ceil(protocol.min_round_s * 1e3 / typical[it.key])))
        sample = measure_once(device, cache.get(it), protocol, runs, size_by_warmup=not known)
        store.add_round(it.key, n, sample)
        typical[it.key] = float(sorted(sample.samples_ms)[len(sample.samples_ms) // 2])
        done[it.key] = n + 1

    try:
        for r in range(protocol.rounds):
            batch = [it for it in items if done.get(it.key, 0) <= r]
            rng.shuffle(batch)
            for it in batch:
                do(it)
                bar.update(1)
        for _ in range(protocol.extra_rounds):
            noisy = []
            for it in items:
                xs, ws = store.samples(it.key)
                if summarize(xs, ws)["cv"] > protocol.max_cv and done[it.key] < protocol.rounds + protocol.extra_rounds:
                    noisy.append(it)
            if not noisy:
                break
            _extra_pass(noisy, rng, do, bar, f"{desc} (re-measuring {len(noisy)} noisy)")
        if protocol.precision:
            _until_precise(items, store, protocol, rng, done, do, bar, desc, started)
    finally:
        bar.close()


def imprecise(items: list, store, protocol: Protocol, done: dict) -> list:
    """Items whose level is not yet known to ±protocol.precision % and that may take another round."""
    out = []
    for it in items:
        if done.get(it.key, 0) >= protocol.max_rounds:
            continue
        ci = level_ci_pct(store.round_medians(it.key))
        if ci is None or ci > protocol.precision:
            out.append(it)
    return out


def _until_precise(items, store, protocol, rng, done, do, bar, desc, started) -> None:
    """Adaptive rounds (see the module docstring): one round per imprecise item per pass, shuffled."""
    def spent():
        return protocol.budget_s is not None and time.monotonic() - started >= protocol.budget_s

    while not spent():
        todo = imprecise(items, store, protocol, done)
        if not todo:
            return
        if not _extra_pass(todo, rng, do, bar, f"{desc} (±{protocol.precision:g} %: {len(todo)} items need more "
                           "rounds)", stop=spent):
            return


def _extra_pass(todo: list, rng, do, bar, description: str, stop=lambda: False) -> bool:
    """One more round for each of `todo`, in shuffled order; False when `stop()` cut the pass short."""
    rng.shuffle(todo)
    bar.total += len(todo)
    bar.set_description(description)
    for it in todo:
        if stop():
            return False
        do(it)
        bar.update(1)
    return True


def shard(items: list, index: int, count: int) -> list:
    """Disjoint, stable shard `index` of `count` (by position in the sorted key list)."""
    keys = sorted(it.key for it in items)
    mine = set(keys[index::count])
    return [it for it in items if it.key in mine]
