"""LatencyModel: a search space + a LUT compiled to arrays, what searches consume.

Each cost Factor of the space (a piece of the arch depending on a few decisions) becomes a dense
table over the joint values of its decisions, filled by the LUT (estimates included). Then
  latency(indices)              = base + Σ_f T_f[joint index of f]       (numpy gather-sum)
  expected_latency(probs)       = base + Σ_f Σ_j T_f[j] Π_d p_d[j_d]     (torch contraction)
which is exact for independent categorical decisions and equals LatencyTable.predict on the
decoded archs (tests check both).

latency() computes every factor's position in one concatenated table with a single small matrix
product (indices as floats times a [decisions + 1, factors] matrix of strides, the last row the
tables' offsets): every term is a small non-negative integer, so float32 is exact while the
concatenated table has at most 2**24 entries (float64 otherwise). Then one gather and a row sum.
expected_latency() does the same in a fixed number of autograd nodes, whatever the number of
factors: per table entry j, the product over its decisions of p_d[j_d] is gathered from the
concatenated probability vector (one gather per decision slot), and E = base + Σ_j T[j] w[j].
benchmarks/latency_model_throughput.py measures both.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..errors import BadInput


class LatencyModel:
    CHUNK = 2048  # rows per step: keeps the [chunk, decisions] and [chunk, factors] temporaries in cache
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
        # joint = [indices, 1] @ _joint_matrix: per factor Σ stride * index + the table's offset
        n_dec = len(self.sizes)
        exact32 = self._flat.size <= 2 ** 24  # every partial sum is an integer below the table size
        self._joint_dtype = np.float32 if exact32 else np.float64
        self._joint_matrix = np.zeros((n_dec + 1, len(self.factors)), dtype=self._joint_dtype)
        for f, (pos, strides, _, _) in enumerate(self.factors):
            for d, st in zip(pos, strides):
                self._joint_matrix[d, f] += st
        self._joint_matrix[n_dec] = self._offsets
        self._ones = np.ones(len(self.factors))
        # expected_latency: entry j of the concatenated table reads, per decision slot s of its factor,
        # element _gather[s, j] of cat(probs..., [1]) (the trailing 1 pads factors with fewer decisions)
        starts = np.concatenate([[0], np.cumsum(self.sizes)])
        slots = max((len(f[0]) for f in self.factors), default=0)
        self._gather = np.full((slots, self._flat.size), starts[-1], dtype=np.int64)
        for (pos, strides, flat, dims), off in zip(self.factors, self._offsets):
            j = np.arange(flat.size)
            for s, (d, st, n) in enumerate(zip(pos, strides, dims)):
                self._gather[s, off:off + flat.size] = starts[d] + (j // st) % n
        self._torch_cache = {}

    def latency(self, indices) -> np.ndarray:
        """Predicted ms for a batch of index lists (shape [B, D] or [D]); any integer dtype."""
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            idx = idx.astype(np.int64)
        single = idx.ndim == 1
        idx = np.atleast_2d(idx)
        n_dec = len(self.sizes)
        if idx.ndim != 2 or idx.shape[1] != n_dec:
            raise BadInput(f"indices: space {self.space.name} has {n_dec} decisions, got {idx.shape[-1]}")
        total = np.full(idx.shape[0], self.base_ms + self.const_ms)
        if self.factors and idx.shape[0]:
            buf = np.empty((min(self.CHUNK, idx.shape[0]), n_dec + 1), dtype=self._joint_dtype)
            buf[:, n_dec] = 1  # picks up the offsets row
            signed = idx.dtype.kind == "i"
            for lo in range(0, idx.shape[0], self.CHUNK):
                part = idx[lo:lo + self.CHUNK]
                if (part.max(axis=0) >= self.sizes).any() or (signed and part.min() < 0):
                    self._bad_index(part, lo)
                b = part.shape[0]
                buf[:b, :n_dec] = part
                joint = (buf[:b] @ self._joint_matrix).astype(np.intp)  # [b, F] into the concatenated table
                total[lo:lo + b] += self._flat.take(joint) @ self._ones
        return total[0] if single else total

    def _bad_index(self, part, lo):
        row, d = np.argwhere((part < 0) | (part >= self.sizes))[0]
        raise BadInput(f"indices[{lo + row}][{d}] ({self.space.choices[d].name}): index {int(part[row, d])} "
                       f"out of range 0..{int(self.sizes[d]) - 1}")

    def expected_latency(self, probs):
        """Differentiable expected latency; `probs` is a list of 1-D torch tensors, one per decision."""
        import torch

        if len(probs) != len(self.sizes):
            raise BadInput(f"probs: space {self.space.name} has {len(self.sizes)} decisions, got {len(probs)}")
        for d, (p, n) in enumerate(zip(probs, self.sizes)):
            if tuple(p.shape) != (n,):
                raise BadInput(f"probs[{d}] ({self.space.choices[d].name}): expected shape ({n},), "
                               f"got {tuple(p.shape)}")
        dtype, device = probs[0].dtype, probs[0].device
        total = torch.as_tensor(self.base_ms + self.const_ms, dtype=dtype, device=device)
        if not self.factors:
            return total
        key = (dtype, device)
        if key not in self._torch_cache:
            self._torch_cache[key] = (torch.as_tensor(self._flat, dtype=dtype, device=device),
                                      torch.as_tensor(self._gather, device=device))
        flat, gather = self._torch_cache[key]
        cat = torch.cat([*probs, torch.ones(1, dtype=dtype, device=device)])
        weight = cat[gather[0]]
        for s in range(1, gather.shape[0]):
            weight = weight * cat[gather[s]]
        return total + torch.dot(flat, weight)
