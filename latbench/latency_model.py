"""LatencyModel: a search space + a LUT compiled to arrays, what searches consume.

Each cost Factor of the space (a piece of the arch depending on a few decisions) becomes a dense
table over the joint values of its decisions, filled by the LUT (estimates included). Then
  latency(indices)              = base + Σ_f T_f[joint index of f]       (numpy gather-sum)
  expected_latency(probs)       = base + Σ_f Σ_j T_f[j] Π_d p_d[j_d]     (torch contraction)
which is exact for independent categorical decisions and equals LatencyTable.predict on the
decoded archs (tests check both).
"""
from __future__ import annotations

import itertools

import numpy as np

from .errors import BadInput


class LatencyModel:
    CHUNK = 8192
    def __init__(self, space, table):
        self.space, self.table = space, table
        self.sizes = np.array(space.sizes, dtype=np.int64)
        self.base_ms = float(table.base_ms)
        self.factors = []  # (decision positions array, strides array, flat table)
        const = 0.0
        for factor in space.cost_factors(table.granularity):
            dims = [int(self.sizes[d]) for d in factor.decisions]
            flat = np.zeros(int(np.prod(dims)) if dims else 1, dtype=np.float64)
            for j, values in enumerate(itertools.product(*[range(n) for n in dims])):
                flat[j] = sum(table.op_ms(op.key)[0] for op in factor.ops(values))
            if not dims:
                const += float(flat[0])
                continue
            strides = np.cumprod([1] + dims[::-1][:-1])[::-1].astype(np.int64)
            self.factors.append((np.array(factor.decisions, dtype=np.int64), strides, flat, dims))
        self.const_ms = const
        # one concatenated table + offsets: a single gather for the whole batch
        self._offsets = np.cumsum([0] + [f[2].size for f in self.factors])[:-1].astype(np.int64)
        self._flat = np.concatenate([f[2] for f in self.factors]) if self.factors else np.zeros(0)
        if self.factors:
            self._pos = np.concatenate([f[0] for f in self.factors])
            self._stride = np.concatenate([f[1] for f in self.factors])
            self._starts = np.cumsum([0] + [len(f[0]) for f in self.factors])[:-1].astype(np.int64)

    def latency(self, indices) -> np.ndarray:
        """Predicted ms for a batch of index lists (shape [B, D] or [D])."""
        idx = np.asarray(indices, dtype=np.int64)
        single = idx.ndim == 1
        idx = np.atleast_2d(idx)
        if idx.shape[1] != len(self.sizes):
            raise BadInput(f"indices: space {self.space.name} has {len(self.sizes)} decisions, got {idx.shape[1]}")
        total = np.full(idx.shape[0], self.base_ms + self.const_ms)
        if self.factors:
            for lo in range(0, idx.shape[0], self.CHUNK):  # chunks keep the [B, P] temporaries in cache
                part = idx[lo:lo + self.CHUNK]
                contrib = part[:, self._pos] * self._stride  # [b, P], positions grouped by factor
                joint = np.add.reduceat(contrib, self._starts, axis=1)  # [b, F] index within each table
                total[lo:lo + self.CHUNK] += self._flat[joint + self._offsets].sum(axis=1)
        return total[0] if single else total

    def expected_latency(self, probs):
        """Differentiable expected latency; `probs` is a list of 1-D torch tensors, one per decision."""
        import torch

        if len(probs) != len(self.sizes):
            raise BadInput(f"probs: space {self.space.name} has {len(self.sizes)} decisions, got {len(probs)}")
        total = torch.as_tensor(self.base_ms + self.const_ms, dtype=probs[0].dtype)
        for pos, _, flat, dims in self.factors:
            t = torch.as_tensor(flat, dtype=probs[0].dtype).reshape(dims)
            for d in pos:  # contract the leading axis with that decision's probabilities
                t = torch.tensordot(probs[int(d)], t, dims=([0], [0]))
            total = total + t
        return total
