"""The device interface: available / fingerprint / prepare / measure.

A *target* is what gets measured: an Arch (whole network) or an Op (one LUT entry). `prepare`
builds the runnable artefact once (model file, compiled module); `measure` runs it and returns
raw samples. The protocol (warmup, rounds, statistics) lives in latbench.measure.protocol and is the same
for every device.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field


@dataclass
class Sample:
    """Raw timings of one measurement call, in milliseconds per inference (per batch on GPU).

    `samples_ms` are individual timed runs where the runtime exposes them; a device that only
    reports an average per invocation (TFLite benchmark_model) returns one sample per invocation
    and sets `runs_per_sample` to the invocation's count.
    """

    samples_ms: list
    runs_per_sample: int = 1
    conditions: dict = field(default_factory=dict)  # temperature, frequency, governor, before/after
    timed_s: float = 0.0  # wall time spent inside the timed runs


class Device:
    """Base class for a measurement target machine + runtime."""

    name = "device"
    runtime = ""
    batch = 1

    def available(self) -> tuple[bool, str]:
        """(True, "") when this device can measure here, else (False, why)."""
        raise NotImplementedError

    def fingerprint(self) -> dict:
        """What makes measurements comparable: model, runtime + versions, threads, affinity, batch."""
        raise NotImplementedError

    def prepare(self, target):
        """Build whatever `measure` runs for an Arch or an Op; may be cached."""
        raise NotImplementedError

    def measure(self, prepared, runs: int, warmup: int, min_warmup_s: float = 0.0) -> Sample:
        raise NotImplementedError

    def conditions(self) -> dict:
        """Temperature / frequency readings, recorded before and after each measurement."""
        return {}

    def node_profile(self, target) -> list | None:
        """Per-node times of a whole network from the runtime's profiler (rounds of node rows; see
        latbench.devices.node_profile), or None when the runtime has no per-node profiler."""
        return None

    def close(self) -> None:
        pass


def fingerprint_id(fp: dict) -> str:
    """Short stable id of a fingerprint (what a profile store is keyed by)."""
    blob = json.dumps(fp, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
