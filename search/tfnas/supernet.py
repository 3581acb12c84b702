"""The TF-NAS supernet at a proxy width and resolution.

As TF-NAS builds it (models/model_search.py of the reference code): every searchable block holds
its candidate ops as *separate* MBInvRes blocks (no weight sharing between ops), each allocated
at its full elastic width (`BlockOp.max_mid`); a stage's output is the sink-connected sum
Σ_d w_d · (output after d blocks), w = softmax(β), the first block always kept. Batch norm as in
TF-NAS's search code: no affine parameters and no running statistics (always batch statistics).

Elastic widths: each op keeps a set of active mid channels (`keep`, indices into its full
width); the expand conv, depthwise conv, squeeze-excite and projection use only those channels,
so gradients reach only them and dropped channels keep their weights for a later expansion
(supplement Fig. 2). Which channels are kept is decided by `ElasticOp.select` from the L1 norm
of the depthwise filters.

Forward: `forward(x, paths)` takes one or several *paths*; a path is (ops, depth_weights) with
depth weights per depth stage a tensor or an int depth index (the stage stops there), ops per block
either an int (that op alone: weight steps) or a 1-D tensor of weights over all ops
(Σ_i w_i op_i(x): architecture steps with Gumbel-softmax weights). Several paths run in one
call (bi-sampling trains two per step; under DDP a step then has one forward) and their logits
come back stacked [paths, batch, classes].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..activations import activation
from ..proxy import proxy_strides

BN_EPS = 1e-5  # torch's BatchNorm2d default, which TF-NAS's search code uses


def batch_norm(x: torch.Tensor, eps: float = BN_EPS) -> torch.Tensor:
    """TF-NAS search BN: affine=False, track_running_stats=False."""
    return F.batch_norm(x, None, None, None, None, True, 0.0, eps)


def _kaiming(shape, fan_out):
    w = torch.empty(shape)
    nn.init.normal_(w, 0.0, math.sqrt(2.0 / fan_out))
    return nn.Parameter(w)


class ElasticOp(nn.Module):
    """One MBInvRes candidate: [1x1 expand], k x k depthwise, [SE], 1x1 project; residual when
    stride 1 and cin == cout. Allocated at `max_mid`; runs on the `keep` channels."""

    def __init__(self, cin, max_mid, cout, kernel, stride, act, se_hidden, expand=True, active=None):
        super().__init__()
        self.cin, self.max_mid, self.cout, self.kernel, self.stride = cin, max_mid, cout, kernel, stride
        self.act = activation(act)
        self.expand = _kaiming((max_mid, cin, 1, 1), max_mid) if expand else None
        self.dw = _kaiming((max_mid, 1, kernel, kernel), kernel * kernel)
        if se_hidden:
            self.se_reduce = _kaiming((se_hidden, max_mid, 1, 1), se_hidden)
            self.se_reduce_b = nn.Parameter(torch.zeros(se_hidden))
            self.se_expand = _kaiming((max_mid, se_hidden, 1, 1), max_mid)
            self.se_expand_b = nn.Parameter(torch.zeros(max_mid))
        else:
            self.se_reduce = None
        self.project = _kaiming((cout, max_mid, 1, 1), cout)
        self.residual = stride == 1 and cin == cout
        self.register_buffer("keep", torch.arange(max_mid if active is None else active), persistent=True)

    @property
    def active(self) -> int:
        return int(self.keep.numel())

    def forward(self, x):
        keep = self.keep
        h = x
        if self.expand is not None:
            h = self.act(batch_norm(F.conv2d(x, self.expand.index_select(0, keep))))
        h = F.conv2d(h, self.dw.index_select(0, keep), None, self.stride, self.kernel // 2, 1, keep.numel())
        h = self.act(batch_norm(h))
        if self.se_reduce is not None:
            s = F.adaptive_avg_pool2d(h, 1)
            s = F.relu(F.conv2d(s, self.se_reduce.index_select(1, keep), self.se_reduce_b))
            s = torch.sigmoid(F.conv2d(s, self.se_expand.index_select(0, keep), self.se_expand_b.index_select(0, keep)))
            h = h * s
        y = batch_norm(F.conv2d(h, self.project.index_select(1, keep)))
        return x + y if self.residual else y

    @torch.no_grad()
    def select(self, active: int) -> None:
        """Keep the `active` channels whose depthwise filters have the largest L1 norm (TF-NAS's
        channel importance), in channel order."""
        active = max(1, min(self.max_mid, int(active)))
        norms = self.dw.detach().abs().sum(dim=(1, 2, 3))
        order = torch.argsort(norms, descending=True, stable=True)
        self.keep = torch.sort(order[:active]).values.to(self.keep.device)


class MixedBlock(nn.Module):
    """The candidate ops of one searchable block."""

    def __init__(self, ops):
        super().__init__()
        self.ops = nn.ModuleList(ops)

    def forward(self, x, choice):
        if isinstance(choice, int):
            return self.ops[choice](x)
        return sum(w * op(x) for w, op in zip(choice, self.ops))


class ConvBN(nn.Module):
    def __init__(self, cin, cout, kernel, stride, act):
        super().__init__()
        self.weight = _kaiming((cout, cin, kernel, kernel), cout * kernel * kernel)
        self.stride, self.kernel, self.act = stride, kernel, activation(act)

    def forward(self, x):
        return self.act(batch_norm(F.conv2d(x, self.weight, None, self.stride, self.kernel // 2)))


class TFNASSupernet(nn.Module):
    """Stem, fixed block, the searchable stages (MixedBlocks, sink-connected), head, classifier."""

    def __init__(self, space, ops, widths, num_classes: int, in_channels: int = 3, width: float = 0.25,
                 min_channels: int = 8, resolution: int = 32, min_feature_map: int = 2):
        super().__init__()
        self.space, self.width, self.min_channels, self.resolution = space, width, min_channels, resolution
        stem_out, stem_k, stem_s = space.STEM
        fixed_mid, fixed_out, fixed_k = space.FIXED_BLOCK
        strides = proxy_strides([stem_s, 1] + [space.STAGES[si].stride if b == 0 else 1 for si, b in space.blocks],
                                resolution, min_feature_map)
        self.strides = strides
        p = self.proxy
        self.stem = ConvBN(in_channels, p(stem_out), stem_k, strides[0], space.STEM_ACT)
        fixed_se = p(space.FIXED_BLOCK_SE) if space.FIXED_BLOCK_SE else 0
        self.fixed = ElasticOp(p(stem_out), p(fixed_mid), p(fixed_out), fixed_k, strides[1], space.FIXED_BLOCK_ACT,
                               fixed_se, expand=fixed_mid != stem_out)
        blocks = []
        for pos, row in enumerate(ops):
            cands = []
            for j, o in enumerate(row):
                cin, cout = p(o.cin), p(o.cout)
                max_mid = self.proxy_mid(o, cin)
                se = p(o.se) if o.se else 0
                cands.append(ElasticOp(cin, max_mid, cout, o.kernel, strides[2 + pos], o.act, se,
                                       active=self.proxy_active(widths, pos, j, max_mid)))
            blocks.append(MixedBlock(cands))
        self.blocks = nn.ModuleList(blocks)
        self.head = ConvBN(p(space.STAGES[-1].out), p(space.HEAD), 1, 1, space.HEAD_ACT)
        self.classifier = nn.Linear(p(space.HEAD), num_classes)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        nn.init.zeros_(self.classifier.bias)
        # stage layout: block positions per stage, and which stages have a depth decision
        self.stage_blocks = [[pos for pos, (s, _) in enumerate(space.blocks) if s == si]
                             for si in range(len(space.STAGES))]

    def proxy(self, channels: int) -> int:
        """Channel count at the proxy width (round half up, at least min_channels)."""
        return max(self.min_channels, int(channels * self.width + 0.5))

    def proxy_mid(self, o, proxy_cin: int) -> int:
        """Full elastic width at the proxy: the same multiple of the proxy input width."""
        return max(1, int(round(o.max_mid * proxy_cin / o.cin)))

    @staticmethod
    def proxy_active(widths, pos, op, proxy_max) -> int:
        return max(1, min(proxy_max, int(round(widths.fraction(pos, op) * proxy_max))))

    def apply_widths(self, widths, changed=None) -> None:
        """Set every op's active channels to its elastic width, keeping the channels with the
        largest depthwise L1 norm; `changed`: only these (block, op) pairs."""
        pairs = changed if changed is not None else [(pos, j) for pos in range(len(self.blocks))
                                                     for j in range(len(self.blocks[pos].ops))]
        for pos, j in pairs:
            op = self.blocks[pos].ops[j]
            want = self.proxy_active(widths, pos, j, op.max_mid)
            if want != op.active:
                op.select(want)

    def describe(self) -> dict:
        return {"width": self.width, "min_channels": self.min_channels, "resolution": self.resolution,
                "strides": self.strides, "parameters": sum(p.numel() for p in self.parameters())}

    def forward(self, x, paths):
        """Logits [len(paths), batch, classes]; path = (ops per block, depth weights per stage with
        a depth decision, in stage order)."""
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.fixed(self.stem(x))
        return torch.stack([self._path(x, ops, depth_w) for ops, depth_w in paths])

    def stage_forward(self, x, si: int, ops, w=None):
        """Stage `si` on `x`: its blocks in order; with more than one block, the sink-connected
        Σ_d w_d · (output after d blocks) (w: weights over depths 1..n), or with an int w (a depth
        index) the output after w + 1 blocks, the blocks beyond not run."""
        if isinstance(w, int):
            for pos in self.stage_blocks[si][:w + 1]:
                x = self.blocks[pos](x, ops[pos])
            return x
        outs = []
        for pos in self.stage_blocks[si]:
            x = self.blocks[pos](x, ops[pos])
            outs.append(x)
        if len(outs) == 1:
            return x
        return sum(wi * o for wi, o in zip(w, outs))

    def _path(self, x, ops, depth_w):
        d = 0
        for si, positions in enumerate(self.stage_blocks):
            if len(positions) > 1:
                x = self.stage_forward(x, si, ops, depth_w[d])
                d += 1
            else:
                x = self.stage_forward(x, si, ops)
        x = self.head(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)
