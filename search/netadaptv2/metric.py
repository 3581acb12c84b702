"""The search metric of an arch: latency from a LUT (any table, any op) or MACs. Non-differentiable
by design; NetAdaptV2 only ever asks for metric(index list). Results are cached per index list."""
from __future__ import annotations


class ArchMetric:
    """metric(indices) -> float through space.decode; `latency(idx)` is the same (LatencyModel-like)."""

    unit = ""

    def __init__(self, space):
        self.space, self._cache = space, {}

    def value(self, arch) -> float:
        raise NotImplementedError

    def __call__(self, indices) -> float:
        key = tuple(int(i) for i in indices)
        if key not in self._cache:
            self._cache[key] = float(self.value(self.space.decode(list(key))))
        return self._cache[key]

    def latency(self, indices):
        import numpy as np

        idx = np.asarray(indices)
        return self(idx) if idx.ndim == 1 else np.array([self(r) for r in idx])

    @property
    def evaluations(self) -> int:
        return len(self._cache)


class TableLatency(ArchMetric):
    """Predicted latency (ms) of the decoded arch from a LatencyTable (estimates for missing keys)."""

    unit = "ms"

    def __init__(self, space, table):
        super().__init__(space)
        self.table = table

    def value(self, arch) -> float:
        return self.table.predict(arch).latency_ms


class MacsMetric(ArchMetric):
    """Millions of MACs of the decoded arch."""

    unit = "MMACs"

    def value(self, arch) -> float:
        return arch.macs / 1e6


class FunctionMetric(ArchMetric):
    """Any function of the index list (tests, custom metrics)."""

    def __init__(self, fn, unit: str = ""):
        super().__init__(None)
        self.fn, self.unit = fn, unit

    def __call__(self, indices) -> float:
        key = tuple(int(i) for i in indices)
        if key not in self._cache:
            self._cache[key] = float(self.fn(list(key)))
        return self._cache[key]
