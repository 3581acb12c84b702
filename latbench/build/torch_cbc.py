"""PyTorch modules for layers with channel-level bypass (`latbench.cbc`): the same naming contract.

A conv layer with bypass is a `CBConv` (its filters in child ``body``, a ConvBNAct); inside an
mbconv block the parts keep their names (``expand``, ``dw``, ``se``, ``project``, ``add``), so
ONNX nodes ``/L3/dw/body/conv/Conv``, ``/L3/dw/Slice``, ``/L3/dw/Concat`` all map to part dw.
A part that is the identity (no filter left, every channel bypassed at stride 1) is None.
"""
from __future__ import annotations

import torch
from torch import nn

from .torch_layers import Add, ConvBNAct, SqueezeExcite


class CBConv(nn.Module):
    """`m` filters (dense over all `cin` inputs, or depthwise over the first `m`), then input
    channels m..z-1 bypassed (x[::s, ::s] at stride s) and concatenated after them."""

    def __init__(self, cin, m, z, kernel=1, stride=1, depthwise=False, bn=True, act="relu"):
        super().__init__()
        self.cin, self.m, self.z, self.stride, self.depthwise = cin, m, z, stride, depthwise
        self.body = None
        if m > 0:
            self.body = ConvBNAct(m if depthwise else cin, m, kernel, stride, groups=m if depthwise else 1,
                                  bn=bn, act=act)

    def forward(self, x):
        parts = []
        if self.body is not None:
            parts.append(self.body(x[:, :self.m] if self.depthwise and self.m < self.cin else x))
        if self.z > self.m:
            b = x[:, self.m:self.z]
            if self.stride > 1:
                b = b[:, :, ::self.stride, ::self.stride]
            parts.append(b)
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


class PadAdd(nn.Module):
    """Residual add of a skip with `i` channels and a path with `o`: the common channels add, the
    wider side's extra channels pass through (the narrower side's are zeros in the super-network)."""

    def __init__(self, i, o):
        super().__init__()
        self.i, self.o = i, o

    def forward(self, x, y):
        if self.i == self.o:
            return x + y
        n = min(self.i, self.o)
        tail = x[:, n:] if self.i > self.o else y[:, n:]
        return torch.cat([x[:, :n] + y[:, :n], tail], 1)


class IsolatedPadAdd(PadAdd):
    """The isolated `addpad` op: one input of max(i, o) channels, skip = its first i, path = its first o."""

    def forward(self, x, y):
        return super().forward(x[:, :self.i], y[:, :self.o])


def _cb(cin, m, z, kernel, stride, depthwise, act, bn=True):
    if m == 0 and z == cin and stride == 1:
        return None  # identity
    return CBConv(cin, m, z, kernel, stride, depthwise, bn, act)


class CBMBConv(nn.Module):
    """Inverted bottleneck with bypass: [expand] -> [dw] -> [se] -> [project] -> [add]."""

    def __init__(self, shape):
        super().__init__()
        L, c = shape.layer, shape.cbc
        self.identity = c["identity"]
        self.expand = self.dw = self.se = self.project = self.add = None
        if self.identity:
            return
        act = L["act"]
        if shape.expand:
            self.expand = _cb(shape.cin, c["e"], c["ze"], 1, 1, False, act)
        self.dw = _cb(c["ze"], c["d"], c["zd"], L["kernel"], L["stride"], True, act)
        self.se = SqueezeExcite(c["zd"], L["se"], L["se_gate"]) if L["se"] else None
        self.project = _cb(c["zd"], c["p"], c["zp"], 1, 1, False, "none")
        if shape.residual:
            self.add = Add() if shape.cin == c["p"] else PadAdd(shape.cin, c["p"])

    def forward(self, x):
        if self.identity:
            return x
        y = x
        for part in (self.expand, self.dw, self.se, self.project):
            if part is not None:
                y = part(y)
        return self.add(x, y) if self.add is not None else y


def cbc_layer_module(shape) -> nn.Module:
    L, c = shape.layer, shape.cbc
    if L["type"] == "mbconv":
        return CBMBConv(shape)
    m = _cb(shape.cin, c["m"], c["z"], L["kernel"], L["stride"], c["dw"], L["act"], L["bn"])
    return nn.Identity() if m is None else m
