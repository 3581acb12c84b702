"""TuNAS's controller on a staged TF-NAS space (`tfnas`): the same table and targets as TF-NAS.

The decisions are the space's own: one op per searchable block (k ∈ {3, 5} × expansion {3, 6} ×
SE) and one depth per stage, at the space's nominal widths (TuNAS has no width level). The
shared weights are TF-NAS's supernet (search.tfnas.supernet): every candidate op a separate
block — what TuNAS itself does for the depthwise conv of each kernel size — and a stage's output
Σ_d w_d · (output after d blocks), which for the sampled depth d is the stage stopped after d
blocks. TuNAS's warmups map onto it as averages, as in TuNAS: an op decision under
op warmup runs all ops of its block with equal weights, a depth decision all depths. There are
no filter decisions (no filter warmup), no rematerialisation, and no hierarchical masking: a block
beyond the sampled depth still gets the sample's advantage (the policy's parent rule is one
'skip' value; a depth makes several values skip a block).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..tfnas.supernet import TFNASSupernet
from ..tfnas.widths import ElasticWidths, block_ops
from .supernet import PlanGroup


@dataclass(frozen=True)
class StagedPlan:
    """One path: per block an op index or a weight tensor over all ops; per depth stage a depth index
    (the stage stops there) or a weight tensor over all depths."""

    ops: tuple
    depth_w: tuple


class StagedPlanner:
    """Index lists of a staged TF-NAS space → paths of TF-NAS's supernet."""

    def __init__(self, space, device="cpu"):
        self.space, self.device = space, torch.device(device)
        self.num_blocks = space.num_blocks
        self.sizes = [len(c.options) for c in space.choices]
        self.op_decisions = [d for d, n in enumerate(self.sizes) if n > 1]  # ops and depths: op warmup
        self.filter_decisions = []

    def parents(self) -> list:
        return [None] * len(self.sizes)

    def plan(self, indices, op_warm=(), filter_warm=()) -> StagedPlan:
        idx, warm = [int(i) for i in indices], set(int(d) for d in op_warm)
        ops = tuple(self._uniform(d) if d in warm else idx[d] for d in range(self.num_blocks))
        depth_w = tuple(self._uniform(d) if d in warm else idx[d] for d in range(self.num_blocks, len(self.sizes)))
        return StagedPlan(ops, depth_w)

    def _uniform(self, d: int) -> torch.Tensor:
        return torch.full((self.sizes[d],), 1.0 / self.sizes[d], device=self.device)


class StagedSupernet(nn.Module):
    """TF-NAS's supernet at the space's nominal widths, driven by TuNAS plans: forward(x, plan)."""

    def __init__(self, space, num_classes: int, in_channels: int = 3, width: float = 0.25, min_channels: int = 8,
                 resolution: int = 32, min_feature_map: int = 2, device="cpu"):
        super().__init__()
        ops = block_ops(space)
        self.net = TFNASSupernet(space, ops, ElasticWidths(ops), num_classes, in_channels, width=width,
                                 min_channels=min_channels, resolution=resolution, min_feature_map=min_feature_map)
        self.planner = StagedPlanner(space, device)

    def forward(self, x: torch.Tensor, plan) -> torch.Tensor:
        if isinstance(plan, PlanGroup):
            return torch.cat([self.net(xc, [(p.ops, p.depth_w)])[0]
                              for xc, p in zip(torch.tensor_split(x, len(plan)), plan)])
        return self.net(x, [(plan.ops, plan.depth_w)])[0]

    def conv_kernels(self) -> set:
        """ids of the convolution kernels (what `weight_decay_on` "conv" decays): all 4-D weights."""
        return {id(p) for p in self.net.parameters() if p.dim() == 4}

    def describe(self) -> dict:
        return {**self.net.describe(), "supernet": "tfnas (separate ops per block, one-hot sink depth)",
                "kernel_sharing": False}
