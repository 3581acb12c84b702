"""The PyTorch modules latbench networks are made of (conv + BN + act, squeeze-excite, add, mbconv, fc),
shared by the plain builders (`torch_model`) and the channel-level-bypass ones (`torch_cbc`)."""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

BN_EPS = 1e-5
_ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "swish": nn.SiLU, "hswish": nn.Hardswish}


def make_act(name: str) -> nn.Module | None:
    """The activation module for an arch `act` name; None for "none"."""
    return None if name == "none" else _ACTS[name]()


class ConvBNAct(nn.Sequential):
    """k x k conv with symmetric 'same' padding k//2 (+ BatchNorm) (+ activation)."""

    def __init__(self, cin, cout, kernel=1, stride=1, groups=1, bn=True, act="relu"):
        mods = OrderedDict(conv=nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=not bn))
        if bn:
            mods["bn"] = nn.BatchNorm2d(cout, eps=BN_EPS)
        a = make_act(act)
        if a is not None:
            mods["act"] = a
        super().__init__(mods)


class SqueezeExcite(nn.Module):
    """Global average pool, 1x1 conv c->se (bias), ReLU, 1x1 conv se->c (bias), gate, multiply."""

    def __init__(self, channels, se, gate="sigmoid"):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.squeeze = nn.Conv2d(channels, se, 1, bias=True)
        self.act = nn.ReLU()
        self.excite = nn.Conv2d(se, channels, 1, bias=True)
        self.gate = nn.Sigmoid() if gate == "sigmoid" else nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.excite(self.act(self.squeeze(self.pool(x)))))


class Add(nn.Module):
    """The residual add, a module of its own so that ONNX names it ``.../add/Add``."""

    def forward(self, x, y):
        return x + y


class MBConv(nn.Module):
    """Inverted bottleneck: [expand] -> dw -> [se] -> project -> [add]."""

    def __init__(self, cin, cout, mid, kernel, stride, se=0, gate="sigmoid", act="relu", residual=False,
                 expand=None):
        super().__init__()
        expand = mid != cin if expand is None else expand  # LayerShape.expand (`expand_conv` forces it)
        self.expand = ConvBNAct(cin, mid, 1, act=act) if expand else None
        self.dw = ConvBNAct(mid, mid, kernel, stride, groups=mid, act=act)
        self.se = SqueezeExcite(mid, se, gate) if se else None
        self.project = ConvBNAct(mid, cout, 1, act="none")
        self.add = Add() if residual else None

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.dw(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return self.add(x, y) if self.add is not None else y


class FC(nn.Module):
    """Flatten + Linear (+ act); `keep4d` reshapes back to N x C x 1 x 1 when a conv follows."""

    def __init__(self, cin, cout, act="none", keep4d=False):
        super().__init__()
        self.fc = nn.Linear(cin, cout)
        self.act = make_act(act)
        self.keep4d = keep4d

    def forward(self, x):
        x = self.fc(torch.flatten(x, 1))
        if self.act is not None:
            x = self.act(x)
        return x[:, :, None, None] if self.keep4d else x


class Part(nn.Module):
    """An isolated se or add op, named ``{part}`` inside layer ``L0``. Add computes x + x."""

    def __init__(self, part: str, module: nn.Module):
        super().__init__()
        self.part = part
        self.add_module(part, module)

    def forward(self, x):
        m = getattr(self, self.part)
        return m(x, x) if self.part == "add" else m(x)
