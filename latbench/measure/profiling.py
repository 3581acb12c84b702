"""Profiling orchestration: a space's ops (or random whole archs) -> protocol -> profile store, sharded."""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

from ..arch import format_indices
from ..errors import BadInput
from ..ops import make_op
from .protocol import Item, Protocol, run_items, shard
from .store import ProfileStore

ROLE_STREAMS = {"train": 1, "validate": 2, "extremes": 3}  # independent random streams: validation archs are held out
# rounds added this long after an item's last one come from another sitting: the host's speed can step
# between sittings (LiteRT networks 13.5 % apart a few hours later, benchmarks/HISTORY.md 2026-11-27 s13), which
# the protocol's interleaving does not spread out the way it spreads drift within one sitting
RESUME_GAP_S = 3600.0


PROBE_OP = make_op("pool", r=1, c=8)  # a no-work op: the runtime's own overhead per run
PROBE_KEY = PROBE_OP.key


def probe_item(granularity: str) -> Item:
    """The runtime-overhead probe (a no-work op) that isolated tables move into base_ms."""
    return Item(PROBE_KEY, PROBE_OP, "probe", {"granularity": granularity})


def op_item(space_name: str, op, granularity: str) -> Item:
    return Item(op.key, op, "op", {"space": space_name, "granularity": granularity})


def op_items(space, granularity: str, limit: int | None = None) -> list:
    """Every op of the space, plus the runtime-overhead probe."""
    ops = space.ops(granularity)
    if limit is not None:
        ops = ops[:limit]
    return [probe_item(granularity)] + [op_item(space.name, op, granularity) for op in ops]


def arch_key(arch) -> str:
    return "arch:" + (f"{arch.space}:{format_indices(arch.indices)}" if arch.indices is not None else arch.name)


def arch_items(archs, role: str = "measure") -> list:
    return [Item(arch_key(a), a, "arch", {"arch": a.to_dict(), "space": a.space, "role": role}) for a in archs]


def sample_archs(space, n: int, seed: int, role: str) -> list:
    """`n` distinct uniform random archs of `space`; `role` selects an independent random stream."""
    rng = np.random.default_rng([seed, ROLE_STREAMS.get(role, 0)])
    seen, archs = set(), []
    while len(archs) < n:
        idx = space.sample(rng)
        t = tuple(idx)
        if t not in seen:
            seen.add(t)
            archs.append(space.decode(idx))
    return archs


def collect_node_profiles(device, items: list, store, progress: bool = True) -> int:
    """Per-node profiles of whole archs (for context tables), resumable; 0 when the runtime has none."""
    from tqdm import tqdm

    have = {r[0] for r in store.db.execute("SELECT DISTINCT key FROM node_profiles WHERE fp=?", (store.fp,))}
    todo = [it for it in items if it.key not in have]
    done = 0
    for it in tqdm(todo, desc="node profiles", unit="arch", file=sys.stderr, disable=not progress):
        rounds = device.node_profile(it.target)
        if rounds is None:
            return 0
        for r, rows in enumerate(rounds):
            store.add_node_profile(it.key, r, rows)
        done += 1
    return done


def stale_resume_warning(store, items: list, protocol: Protocol, now: float | None = None) -> str | None:
    """One line when this run would add rounds to items whose newest round is over RESUME_GAP_S old."""
    done, last = store.rounds_done(), store.last_round_times()
    resumed = [last[it.key] for it in items if 0 < done.get(it.key, 0) < protocol.rounds]
    if not resumed:
        return None
    age_s = (time.time() if now is None else now) - max(resumed)
    if age_s < RESUME_GAP_S:
        return None
    return (f"latbench: warning: {store.path}: adding rounds to {len(resumed)} items last measured "
            f"{age_s / 3600:.1f} h ago; a host's speed can differ between sittings, so their rounds will mix "
            f"two speeds (a fresh --db measures everything together)")


def _shard_process(i: int, dev, items: list, db_path: str, protocol: Protocol, show: bool, node_profiles: bool,
                   n: int) -> int:
    """Shard `i` of `n` measured in its own process, into its own connection to the store."""
    st = ProfileStore(db_path, dev.fingerprint())
    try:
        mine = shard(items, i, n)
        run_items(dev, mine, st, protocol, show, desc=f"profile shard {i + 1}/{n}")
        if node_profiles:
            collect_node_profiles(dev, [it for it in mine if it.kind == "arch"], st, show)
        return os.getpid()
    finally:
        dev.close()
        st.close()


def profile_items(devices: list, items: list, db_path, protocol: Protocol, progress: bool = True,
                  node_profiles: bool = False) -> dict:
    """Measure `items` on one or more devices (disjoint shards in parallel: threads, or one process
    per device for devices with `process_shards`, i.e. GPUs) into `db_path`.

    All devices must share one fingerprint (same phone model / GPU model): the store refuses others.
    """
    fingerprint = devices[0].fingerprint()
    for dev in devices[1:]:
        if dev.fingerprint() != fingerprint:
            raise BadInput(f"{getattr(dev, 'serial', dev.name)}: device fingerprint differs from the first device's; "
                           "profile devices of different models or builds into different --db files")
    # checks the fingerprint and takes the writer lock before any thread starts (released by close)
    store = ProfileStore(db_path, fingerprint, lock=True)
    if warning := stale_resume_warning(store, items, protocol):
        print(warning, file=sys.stderr)
    done = store.rounds_done()
    already = sum(done.get(it.key, 0) >= protocol.rounds for it in items)
    if line := resume_line(done, items, protocol):
        print(line, file=sys.stderr)
    t_start = time.time()
    errors = []

    def work(i, dev, st, show):
        own = st is None
        try:
            if own:  # sqlite connections belong to the thread that opened them
                st = ProfileStore(db_path, dev.fingerprint())
            mine = shard(items, i, len(devices))
            run_items(dev, mine, st, protocol, show,
                      desc="profile" if len(devices) == 1 else f"profile shard {i + 1}/{len(devices)}")
            if node_profiles:
                collect_node_profiles(dev, [it for it in mine if it.kind == "arch"], st, show)
        except BaseException as exc:  # noqa: BLE001 — re-raised in the calling thread
            errors.append(exc)
        finally:
            dev.close()
            if own and st is not None:
                st.close()

    if len(devices) == 1:
        work(0, devices[0], store, progress)
    elif all(getattr(d, "process_shards", False) for d in devices):
        # one process per device (GPUs): threads share the GIL, which skews launch-bound small ops
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(len(devices), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_shard_process, i, d, items, str(db_path), protocol, progress and i == 0,
                                   node_profiles, len(devices)) for i, d in enumerate(devices)]
            for f in futures:
                try:
                    f.result()
                except BaseException as exc:  # noqa: BLE001 — the first one is re-raised below
                    errors.append(exc)
    else:
        threads = [threading.Thread(target=work, args=(i, d, None, progress and i == 0))
                   for i, d in enumerate(devices)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    try:
        if errors:
            raise errors[0]
        now_items, now_timed = store.timed_seconds_since(t_start)
        out = {"fingerprint": store.fingerprint, "fingerprint_id": store.fp, "items": len(items),
               "measured": len(set(store.rounds_done()) & {it.key for it in items}),
               "already_measured": already, "measured_this_run": now_items,
               "timed_s": now_timed, "store_timed_s": store.timed_seconds(), "db": str(db_path)}
    finally:
        store.close()
    return out


def resume_line(done: dict, items: list, protocol: Protocol) -> str | None:
    """'resuming: N of M items already measured' when the store already holds rounds of `items`."""
    complete = sum(done.get(it.key, 0) >= protocol.rounds for it in items)
    partly = sum(0 < done.get(it.key, 0) < protocol.rounds for it in items)
    if not complete and not partly:
        return None
    return (f"latbench: resuming: {complete} of {len(items)} items already measured"
            + (f", {partly} partly" if partly else ""))
