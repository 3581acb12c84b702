"""The reference workload of paired timing and its per-machine calibration.

The calibrated latency is measured once per (machine, runtime, versions, batch) and kept in
``$LATBENCH_CACHE/calibration/``; the first writer wins, so parallel shards and later runs
(profile today, validate tomorrow) all convert to the same scale. Delete the file to recalibrate
(this changes the device fingerprint: stores and tables measured before then are refused).
"""
from __future__ import annotations

import json
import time

import numpy as np

from ..build.cache import cache_root
from ..errors import BadInput
from ..fileio import atomic_write_text
from .base import fingerprint_id

# one MobileNetV2 block (28x28, 32 channels, expansion 6): a typical mix of 1x1 and depthwise work
REFERENCE_KEY = "mbconv:r=28:i=32:o=32:m=192:x=1:k=3:s=1:se=0:gate=sigmoid:act=relu6:res=1"
CALIBRATION_S = 2.0


def calibration_path(base_fingerprint: dict):
    return cache_root(fmt="calibration") / f"{base_fingerprint.get('device', 'dev')}-{fingerprint_id(base_fingerprint)}.json"


def measure_calibration(run, seconds: float = CALIBRATION_S) -> float:
    """10th percentile of the reference's run times over `seconds` (after a warm-up): the speed
    of the host when no other tenant slows it, which is what a low percentile sees."""
    for _ in range(20):
        run()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 20:
        t0 = time.perf_counter_ns()
        run()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return float(np.percentile(times, 10))


def reference_ms(base_fingerprint: dict, run) -> float:
    """The calibrated reference latency for this fingerprint: read, or measured and stored."""
    path = calibration_path(base_fingerprint)
    if not path.exists():
        record = {"reference": REFERENCE_KEY, "ms": round(measure_calibration(run), 6),
                  "method": f"p10 of {CALIBRATION_S:g} s of runs", "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "fingerprint": base_fingerprint}
        # first writer wins; a concurrent calibration reads the winner's
        atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True), replace=False)
    try:
        record = json.loads(path.read_text())
        ms = float(record["ms"])
        if record.get("reference") != REFERENCE_KEY or not ms > 0:
            raise ValueError("other reference or non-positive ms")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{path}: bad calibration file ({exc}); delete it to recalibrate") from None
    return ms
