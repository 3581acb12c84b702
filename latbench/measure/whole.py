"""Whole-network latency of one Arch on one device with the standard protocol (DESIGN §5)."""
from __future__ import annotations

import time

from .profiling import arch_items
from .protocol import Protocol, run_items
from .store import ProfileStore


def measure_arch(device, arch, protocol: Protocol | None = None, progress: bool = False, close: bool = True) -> dict:
    """Median latency and spread of `arch` on `device` (an open device); closes it unless `close` is False."""
    protocol = protocol or Protocol()
    store = ProfileStore(":memory:", device.fingerprint())
    items = arch_items([arch])
    t0 = time.perf_counter()
    try:
        run_items(device, items, store, protocol, progress=progress, desc="measure")
    finally:
        if close:
            device.close()
    res = store.results()[items[0].key]
    return {"name": arch.name, "latency_ms": res["ms"], "mad_ms": res["mad"], "p10_ms": res["p10"],
            "p90_ms": res["p90"], "cv_pct": res["cv"], "count": res["n"], "rounds": res["rounds"],
            "ci95_pct": res["ci95_pct"], "fingerprint": store.fingerprint,
            "fingerprint_id": store.fp, "protocol": protocol.as_dict(), "wall_s": round(time.perf_counter() - t0, 3)}
