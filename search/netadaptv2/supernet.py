"""NetAdaptV2 super-network: the initial network trained with ordered dropout (OD), channel-level
bypass (CBC) and superkernels (netadaptv2.md §2.2, §2.3; DESIGN 8.3).

The super-network has the initial network's layers at the proxy's width; every image of a batch
carries its own index list of the space (one row of `idx`), so one forward-backward pass trains
as many sub-networks as there are images.
- OD: after each conv (+ BN + act) the output channels j >= M_b of image b are zeroed, M_b that
  image's width for the layer (the last filters removed, never a random subset).
- CBC: a second, complementary OD on the bypass path keeps input channel j exactly where the
  conv path dropped it and j < T (depthwise: T infinite): out = OD(conv(x)) + OD'(x). So the
  image's output has Z = max(min(C, T), M) live channels, C its live input channels.
- Superkernel: one depthwise k x k weight per layer; a smaller kernel is its centre crop. Per
  image, the conv for each kernel size in the batch is computed and the image's one kept.
- Squeeze-and-excite with squeeze width 0 is no SE (gate 1), as in the arch format.
BatchNorm always normalises with the batch's statistics (no running averages): sub-networks are
scored on a held-out batch that all runs the same arch, so BN sees that arch's statistics.
Live channel counts are tracked per image with the arch format's rules (`latbench.cbc`), so a
depthwise width above the channels that reach it is clipped exactly as `decode` clips it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_ACT = {"relu": F.relu, "relu6": F.relu6, "hswish": F.hardswish, "swish": F.silu, "none": lambda x: x}


def proxy_width(full: int, mult: float, levels: int) -> int:
    """The proxy's full width: `full` x `mult`, a multiple of the level steps (levels - 1), >= one step."""
    step = levels - 1
    return max(step, int(round(full * mult / step)) * step)


def keep_mask(width: torch.Tensor, channels: int) -> torch.Tensor:
    """[B, channels, 1, 1] float mask: 1 for channel j < width_b (ordered dropout keeps the first)."""
    j = torch.arange(channels, device=width.device)
    return (j[None, :] < width[:, None]).to(torch.float32)[:, :, None, None]


def ordered_dropout(y: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Zero the last channels of each image: y[b, j] = 0 for j >= width[b]."""
    return y * keep_mask(width, y.shape[1])


def bypass_merge(y: torch.Tensor, x: torch.Tensor, width: torch.Tensor, t, stride: int = 1) -> torch.Tensor:
    """CBC: OD(y) + complementary OD on the (strided) input: channel j of image b comes from the
    conv when j < width_b, else from the input when j < T (None: infinite)."""
    out = ordered_dropout(y, width)
    n = min(x.shape[1], y.shape[1]) if t is None else min(x.shape[1], y.shape[1], t)
    if n == 0:
        return out
    xs = x[:, :n, ::stride, ::stride] if stride > 1 else x[:, :n]
    pass_mask = 1.0 - keep_mask(width, n)
    return torch.cat([out[:, :n] + xs * pass_mask, out[:, n:]], 1)


def batch_norm(x, bn: nn.BatchNorm2d):
    return F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)


class ODConv(nn.Module):
    """A conv layer of the super-network (dense or depthwise superkernel) with OD and optional CBC."""

    def __init__(self, cin, cout, kernel, stride, act, depthwise=False, bn=True, t=None, bypass=True):
        super().__init__()
        self.cin, self.cout, self.kernel, self.stride, self.act = cin, cout, kernel, stride, act
        self.depthwise, self.t, self.bypass = depthwise, t, bypass
        self.weight = nn.Parameter(torch.empty(cout, 1 if depthwise else cin, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.bn = nn.BatchNorm2d(cout) if bn else None
        self.bias = None if bn else nn.Parameter(torch.zeros(cout))

    def _conv(self, x, k):
        w = self.weight
        if k != self.kernel:
            o = (self.kernel - k) // 2
            w = w[:, :, o:o + k, o:o + k]
        return F.conv2d(x, w, self.bias, self.stride, k // 2, groups=self.cin if self.depthwise else 1)

    def forward(self, x, width, kernel=None):
        """`width` [B] filters per image; `kernel` [B] kernel size per image (depthwise superkernel)."""
        if kernel is None:
            y = self._conv(x, self.kernel)
        else:
            y = None
            for k in torch.unique(kernel).tolist():
                yk = self._conv(x, int(k))
                sel = (kernel == k).to(yk.dtype)[:, None, None, None]
                y = yk * sel if y is None else y + yk * sel
        if self.bn is not None:
            y = batch_norm(y, self.bn)
        y = _ACT[self.act](y)
        if not self.bypass:
            return ordered_dropout(y, width)
        return bypass_merge(y, x, width, None if self.depthwise else self.t, self.stride)


class ODSqueezeExcite(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.squeeze = nn.Conv2d(channels, hidden, 1)
        self.excite = nn.Conv2d(hidden, channels, 1)

    def forward(self, x, width):
        s = F.relu(self.squeeze(x.mean((2, 3), keepdim=True)))
        s = ordered_dropout(s, width)
        gate = F.hardsigmoid(self.excite(s))
        on = (width > 0).to(x.dtype)[:, None, None, None]
        return x * (gate * on + (1 - on))


class ODBlock(nn.Module):
    def __init__(self, cin, mid, cout, kernel, stride, se, act, t, expand_conv):
        super().__init__()
        self.residual = stride == 1
        self.t, self.expand_conv = t, expand_conv
        self.expand = ODConv(cin, mid, 1, 1, act, t=t) if expand_conv else None
        self.dw = ODConv(mid, mid, kernel, stride, act, depthwise=True)
        self.se = ODSqueezeExcite(mid, se) if se else None
        self.project = ODConv(mid, cout, 1, 1, "none", t=t, bypass=not self.residual)

    def forward(self, x, live, w):
        """`live` [B] live input channels per image; `w` {field: [B] values}. Returns (y, live out)."""
        if self.expand is not None:
            x1 = self.expand(x, w["mid"])
            ze = torch.maximum(torch.clamp(live, max=self.t), w["mid"])
        else:
            x1, ze = x, live
        y = self.dw(x1, torch.minimum(w["dw"], ze), w.get("kernel"))
        if self.se is not None:
            y = self.se(y, w["se"])
        y = self.project(y, w["out"])
        if self.residual:
            return x + y, torch.maximum(live, w["out"])
        return y, torch.maximum(torch.clamp(ze, max=self.t), w["out"])


class ODSuperNet(nn.Module):
    """The super-network of a NetAdaptV2 space (`space.SPEC`, `space.slots`) at a proxy width and
    resolution (early strides set to 1 until the last map is at least `min_feature_map`)."""

    def __init__(self, space, num_classes, in_channels=3, width=0.25, resolution=32, min_feature_map=2):
        super().__init__()
        from latbench.spaces.netadaptv2 import LEVELS, BlockSpec, ConvSpec

        self.space, self.levels = space, LEVELS
        strides = [getattr(s, "stride", 1) for s in space.SPEC]
        n_down = sum(1 for s in strides if s > 1)
        keep = n_down
        while keep > 0 and resolution / 2 ** keep < min_feature_map:
            keep -= 1
        drop = n_down - keep  # the first `drop` stride-2 layers become stride 1
        self.scale = {}  # (layer, field) -> proxy values of the options (widths scaled, kernels as is)
        self.layers = nn.ModuleList()
        c, seen_down = in_channels, 0
        for li, spec in enumerate(space.SPEC):
            t = space.layer_t[li]
            tp = None if t is None else max(1, int(round(t * width)))
            s = getattr(spec, "stride", 1)
            if s > 1:
                seen_down += 1
                s = 1 if seen_down <= drop else s
            if isinstance(spec, ConvSpec):
                full = proxy_width(spec.out, width, LEVELS)
                self.layers.append(ODConv(c, full, spec.kernel, s, spec.act, bn=spec.bn, t=tp))
                self._scale(li, "out", full)
                c = full  # T <= the full width in the initial network: bypassed channels fit
            elif isinstance(spec, BlockSpec):
                mid = proxy_width(spec.mid, width, LEVELS) if spec.expand_conv else c
                out = proxy_width(spec.out, width, LEVELS)
                se = proxy_width(spec.se, width, LEVELS) if spec.se else 0
                self.layers.append(ODBlock(c, mid, out, spec.kernel, s, se, spec.act, tp, spec.expand_conv))
                for f, full in (("mid", mid), ("dw", mid), ("se", se), ("out", out)):
                    self._scale(li, f, full)
                c = out
            elif spec == "pool":
                self.layers.append(nn.AdaptiveAvgPool2d(1))
            else:
                self.layers.append(nn.Linear(c, num_classes))
        self._index_tables = []
        for p, (li, f) in enumerate(space.slots):
            if f == "kernel":
                self._index_tables.append(torch.tensor(space.choices[p].options))
            else:
                full = self.scale[(li, f)]
                self._index_tables.append(torch.tensor([full * j // (LEVELS - 1) for j in range(LEVELS)]))

    def _scale(self, li, field, full):
        self.scale[(li, field)] = full

    def values(self, idx: torch.Tensor) -> list[dict]:
        """Per layer {field: [B] proxy values} for index lists `idx` [B, decisions]."""
        out = [dict() for _ in self.space.SPEC]
        for p, (li, f) in enumerate(self.space.slots):
            out[li][f] = self._index_tables[p][idx[:, p]]
        return out

    def forward(self, x, idx):
        """`idx`: [B, decisions] (one index list per image) or one index list for the whole batch."""
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        if idx.dim() == 1:
            idx = idx[None].expand(x.shape[0], -1)
        vals = self.values(idx)
        live = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        for li, layer in enumerate(self.layers):
            if isinstance(layer, ODConv):
                x = layer(x, vals[li]["out"])
                live = torch.maximum(torch.clamp(live, max=layer.t) if layer.t else live, vals[li]["out"])
            elif isinstance(layer, ODBlock):
                x, live = layer(x, live, vals[li])
            elif isinstance(layer, nn.Linear):
                x = layer(torch.flatten(x, 1))
            else:
                x = layer(x)
        return x


def balanced_indices(sizes, batch: int, rng: np.random.Generator) -> np.ndarray:
    """[batch, decisions]: per decision, every option used floor or ceil(batch / options) times,
    in a random order (ordered dropout trains each width about equally often per layer)."""
    cols = []
    for n in sizes:
        # a random subset of options gets the extra images when batch is not a multiple of n
        col = np.concatenate([np.repeat(np.arange(n), batch // n), rng.permutation(n)[:batch % n]])
        cols.append(rng.permutation(col))
    return np.stack(cols, 1)
