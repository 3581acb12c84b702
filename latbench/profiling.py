"""Profiling orchestration: a space's ops (or whole archs) -> protocol -> profile store, sharded."""
from __future__ import annotations

import threading

from .protocol import Item, Protocol, run_items, shard
from .store import ProfileStore


def op_items(space, granularity: str, limit: int | None = None) -> list:
    ops = space.ops(granularity)
    if limit is not None:
        ops = ops[:limit]
    return [Item(op.key, op, "op", {"space": space.name, "granularity": granularity}) for op in ops]


def arch_items(archs, granularity_meta: dict | None = None) -> list:
    from .arch import format_indices

    items = []
    for a in archs:
        key = "arch:" + (f"{a.space}:{format_indices(a.indices)}" if a.indices is not None else a.name)
        meta = {"arch": a.to_dict(), **(granularity_meta or {})}
        items.append(Item(key, a, "arch", meta))
    return items


def profile_items(devices: list, items: list, db_path, protocol: Protocol, progress: bool = True) -> dict:
    """Measure `items` on one or more devices (disjoint shards in parallel threads) into `db_path`.

    All devices must share one fingerprint (same phone model / GPU model): the store refuses others.
    Returns {"fingerprint": ..., "items": n, "timed_s": ...}.
    """
    fingerprint = devices[0].fingerprint()
    store = ProfileStore(db_path, fingerprint)  # checks the fingerprint before any thread starts
    if len(devices) == 1:
        try:
            run_items(devices[0], items, store, protocol, progress)
        finally:
            devices[0].close()
    else:
        errors = []

        def worker(i, dev):
            st = ProfileStore(db_path, dev.fingerprint())
            try:
                run_items(dev, shard(items, i, len(devices)), st, protocol, progress and i == 0,
                          desc=f"profile shard {i + 1}/{len(devices)}")
            except BaseException as exc:  # noqa: BLE001 — re-raised in the main thread
                errors.append(exc)
            finally:
                dev.close()
                st.close()

        threads = [threading.Thread(target=worker, args=(i, d)) for i, d in enumerate(devices)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
    out = {"fingerprint": store.fingerprint, "fingerprint_id": store.fp, "items": len(items),
           "measured": len(store.results()), "timed_s": store.timed_seconds(), "db": str(db_path)}
    store.close()
    return out
