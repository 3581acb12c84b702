"""Weight-sharing supernet of a TuNAS space at a proxy width and resolution.

Built from the space's template and `settings()` (the largest setting of every layer position
allocates the weights), so it follows the space definition for all three TuNAS spaces:
stem/head convs (kernel searchable in mobilenetv3-like), depthwise-separable convs, inverted
bottlenecks (1x1 expansion, depthwise, optional squeeze-excite, 1x1 projection; residual where
TuNAS has one), global pool, the MobileNetV3 post-pool 1x1 conv, and a linear classifier.

Weight sharing (TuNAS section 4.1): one 1x1 expansion and one projection conv (with their batch
norms) per layer position for every kernel size and expansion ratio (operation collapsing); a
depthwise conv and batch norm of its own per kernel size, as TuNAS; every width (block filters,
expansion) uses the first N channels of the largest allocation (channel masking). A skipped
layer is the identity. `kernel_sharing=True` instead cuts every kernel size from the centre of
one largest-kernel weight with one batch norm (OFA-style; not TuNAS's, see search/README.md).

Proxy: every channel count x `width` (at least `min_channels`), input at `resolution`.
Strides: the space's stride pattern, except that the last stride-2 layers become stride 1
until the last feature map is at least `min_feature_map` pixels wide. At resolution 32 the
TuNAS patterns (total stride 32) would end on a 1x1 map; with the default min_feature_map 2 the
last stride-2 block (block6 in the ProxylessNAS spaces, block5 in mobilenetv3-like) runs at
stride 1 and the network ends on 2x2. Dropping the last stride rather than the stem's keeps the
cost of a step almost unchanged (the late layers work on tiny maps); the strides used are
recorded in result.json under `proxy.strides`.

Rematerialisation (TuNAS appendix C): a layer that averages several ops (op warmup) is run
under torch.utils.checkpoint when `remat` is on, so only its input is kept for the backward
pass and the ops are recomputed one at a time there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..proxy import proxy_strides
from .layers import (ConvBN, DepthwiseBN, KernelChoice, SharedBatchNorm, SharedConv2d, SharedLinear,
                     SharedSqueezeExcite, activation)
from .plan import MODULE_KINDS, Planner


def _mean(outputs: list) -> torch.Tensor:
    return outputs[0] if len(outputs) == 1 else torch.stack(outputs).mean(0)


class ConvLayer(nn.Module):
    """k x k conv + BN (or bias) + activation; a searched kernel averages its options under op warmup."""

    def __init__(self, cin, cout, kernels, stride, act, bn, share=False):
        super().__init__()
        self.conv = KernelChoice(kernels, lambda k: ConvBN(cin, cout, k, stride, bn), share)
        self.act = activation(act)

    def forward(self, x, p):
        return _mean([self.act(self.conv(x, k, p.cout)) for k in p.kernels])


class SepConvLayer(nn.Module):
    """Depthwise k x k + BN + act, 1x1 pointwise + BN; residual where the space has one."""

    def __init__(self, cin, cout, kernels, stride, act, residual, share=False):
        super().__init__()
        self.dw = KernelChoice(kernels, lambda k: DepthwiseBN(cin, k, stride), share)
        self.pw, self.bn2 = SharedConv2d(cin, cout, 1), SharedBatchNorm(cout)
        self.act, self.residual = activation(act), residual

    def branch(self, x, p):
        h = _mean([self.act(self.dw(x, k)) for k in p.kernels])
        return self.bn2(self.pw(h, p.cout))

    def forward(self, x, p):
        return _finish(x, self.branch(x, p), p, self.residual)


class BottleneckLayer(nn.Module):
    """Inverted bottleneck: 1x1 expand + BN + act, depthwise + BN + act, [SE], 1x1 project + BN."""

    def __init__(self, cin, mid, cout, kernels, stride, act, residual, se_hidden, share=False):
        super().__init__()
        self.expand, self.bn_e = SharedConv2d(cin, mid, 1), SharedBatchNorm(mid)
        self.dw = KernelChoice(kernels, lambda k: DepthwiseBN(mid, k, stride), share)
        self.se = SharedSqueezeExcite(mid, se_hidden) if se_hidden else None
        self.project, self.bn_p = SharedConv2d(mid, cout, 1), SharedBatchNorm(cout)
        self.act, self.residual = activation(act), residual

    def branch(self, x, p):
        h = self.act(self.bn_e(self.expand(x, p.mid)))
        h = _mean([self.act(self.dw(h, k)) for k in p.kernels])
        if any(p.se):
            h = _mean([self.se(h, p.se_hidden) if on else h for on in p.se])
        return self.bn_p(self.project(h, p.cout))

    def forward(self, x, p):
        return _finish(x, self.branch(x, p), p, self.residual)


def _finish(x, y, p, residual):
    if p.skip_avg:
        y = 0.5 * y  # mean of the layer and the skip (zero) option
    return x + y if residual else y


class PlanGroup(list):
    """Plans of several archs for one batch, split in equal chunks (`Supernet.forward`)."""


class Supernet(nn.Module):
    """The proxy supernet of a TuNAS space. forward(x, plan) with plan from `self.planner.plan(...)`."""

    def __init__(self, space, num_classes: int, in_channels: int = 3, width: float = 0.25, min_channels: int = 8,
                 resolution: int = 32, min_feature_map: int = 2, remat: bool = True, kernel_sharing: bool = False):
        super().__init__()
        self.space, self.remat, self.resolution = space, remat, resolution
        self.kernel_sharing = kernel_sharing
        self.planner = Planner(space, width, min_channels)
        pl = self.planner
        specs = pl.specs
        mods = [i for i, s in enumerate(specs) if s.kind in MODULE_KINDS]
        strides = proxy_strides([specs[i].stride for i in mods], resolution, min_feature_map)
        self.strides = dict(zip(mods, strides))
        self.layers = nn.ModuleDict()
        self.kinds = [s.kind for s in specs]
        last = in_channels
        for i, (spec, s) in enumerate(zip(specs, pl.max_settings)):
            if spec.kind not in MODULE_KINDS:
                continue
            cin = in_channels if i == mods[0] else pl.proxy(s.cin)
            cout = pl.proxy(s.cout)
            kernels, share = self._kernels(spec, s), kernel_sharing
            if spec.kind == "conv":
                m = ConvLayer(cin, cout, kernels, self.strides[i], spec.act, spec.bn, share)
            elif spec.kind == "sepconv":
                m = SepConvLayer(cin, cout, kernels, self.strides[i], spec.act, spec.residual, share)
            else:
                mid = pl.proxy(s.mid)
                se_dec = dict(spec.decisions).get("se")
                has_se = se_dec is not None and True in pl.options[se_dec]
                hidden = max(pl.proxy(_se(m)) for m in range(1, s.mid + 1)) if has_se else 0
                m = BottleneckLayer(cin, mid, cout, kernels, self.strides[i], spec.act, spec.residual, hidden, share)
            self.layers[str(i)] = m
            last = cout
        self.classifier = SharedLinear(last, num_classes)

    def _kernels(self, spec, s) -> tuple:
        """The kernel sizes this layer position can take (one when the kernel is not searched)."""
        dec = dict(spec.decisions)
        if "kernel" in dec:
            return tuple(self.planner.options[dec["kernel"]])
        return (spec.kernel or 1 if spec.kind == "conv" else s.kernel,)

    def describe(self) -> dict:
        pl = self.planner
        return {"width": pl.width, "min_channels": pl.min_channels, "resolution": self.resolution,
                "strides": {self.planner.specs[i].name: s for i, s in self.strides.items()},
                "kernel_sharing": self.kernel_sharing,
                "parameters": sum(p.numel() for p in self.parameters())}

    def forward(self, x: torch.Tensor, plan) -> torch.Tensor:
        """Logits of `x` under one plan, or under a `PlanGroup`: the batch split into equal chunks, one
        arch per chunk (several TuNAS shards in one call, so DDP sees one forward per step)."""
        if isinstance(plan, PlanGroup):
            return torch.cat([self._forward(xc, p) for xc, p in zip(torch.tensor_split(x, len(plan)), plan)])
        return self._forward(x, plan)

    def _forward(self, x: torch.Tensor, plan: list) -> torch.Tensor:
        # channels-last: CPU depthwise convolutions (and their backward) are several times faster
        x = x.contiguous(memory_format=torch.channels_last)
        for i, kind in enumerate(self.kinds):
            p = plan[i]
            if kind == "pool":
                x = F.adaptive_avg_pool2d(x, 1)
                continue
            if p is None:
                continue
            if not p.present:
                continue  # skipped layer: identity
            layer = self.layers[str(i)]
            if self.remat and p.averaged and torch.is_grad_enabled() and self.training:
                x = checkpoint(layer, x, p, use_reentrant=False)
            else:
                x = layer(x, p)
        return self.classifier(torch.flatten(x, 1))


def _se(mid: int) -> int:
    from latbench.spaces.tunas import se_channels

    return se_channels(mid)
