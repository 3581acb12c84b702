"""PyTorch builders: an Arch (DESIGN §2) or a single Op as an `nn.Module`, in eval mode.

Module names follow the package's naming contract: the network is a Sequential whose children are
``L{i}``; an mbconv block has children ``expand``, ``dw``, ``se``, ``project``, ``add``. A conv
layer (and every conv part) is ``conv`` [+ ``bn``] [+ ``act``]. Weights and BN running statistics
are drawn from a seeded generator (He-normal kernels, BN stats away from identity), so two builds of
the same arch are bit-identical and cross-runtime equivalence tests exercise every parameter.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..arch import Arch, check_size
from ..ops import Op, op_from_key
from . import op_arch, op_input_shape

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


class ArchNet(nn.Sequential):
    """The network: children ``L0``, ``L1``, ... in arch order; `input_shape(batch)` is NCHW."""

    def __init__(self, modules: OrderedDict, in_shape: tuple):
        super().__init__(modules)
        self.in_shape = tuple(in_shape)  # (C, H, W)

    def input_shape(self, batch: int = 1) -> tuple:
        return (batch,) + self.in_shape


def layer_module(shape, next_type: str | None = None) -> nn.Module:
    """The module for one `LayerShape` of an arch."""
    L = shape.layer
    t = L["type"]
    if t == "conv":
        return ConvBNAct(shape.cin, shape.cout, L["kernel"], L["stride"], L["groups"], L["bn"], L["act"])
    if t == "mbconv":
        return MBConv(shape.cin, shape.cout, shape.mid, L["kernel"], L["stride"], L["se"], L["se_gate"],
                      L["act"], shape.residual, getattr(shape, "expand", None))
    if t == "pool":
        return nn.AdaptiveAvgPool2d(1)
    if t == "fc":
        return FC(shape.cin, shape.cout, L["act"], keep4d=next_type not in (None, "fc"))
    raise ValueError(f"unknown layer type {t!r}")


def init_weights(module: nn.Module, seed: int = 0) -> nn.Module:
    """Deterministic random weights and BN running statistics (independent of torch's global RNG)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0.0, (2.0 / m.weight[0].numel()) ** 0.5, generator=g)
                if m.bias is not None:
                    m.bias.uniform_(-0.1, 0.1, generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return module


def build_torch(arch: Arch, seed: int = 0, training: bool = False) -> ArchNet:
    """`arch` as an `ArchNet` (children ``L{i}``), seeded weights, eval mode unless `training`."""
    check_size(arch)  # a typo'd width allocates its weights here: refuse it first
    shapes = arch.shapes()
    mods = OrderedDict()
    for j, s in enumerate(shapes):
        nxt = shapes[j + 1].type if j + 1 < len(shapes) else None
        mods[f"L{s.index}"] = layer_module(s, nxt)
    net = ArchNet(mods, (arch.in_channels, arch.resolution, arch.resolution))
    init_weights(net, seed)
    return net.train(training)


def build_torch_op(op: Op | str, batch: int = 1, seed: int = 0, training: bool = False):
    """``(module, input_shape)`` for one isolated op (an `Op` or its key).

    conv / mbconv / pool / fc are a one-layer `ArchNet` (fc takes N x i x 1 x 1, as after the
    pool); se is the squeeze-and-excite alone on N x c x r x r; add is ``x + x`` on one
    N x c x r x r input, so every isolated op has exactly one input (runtimes keep it an Add).
    """
    if isinstance(op, str):
        op = op_from_key(op)
    shape = op_input_shape(op, batch)
    arch = op_arch(op)
    if arch is not None:
        return build_torch(arch, seed, training), shape
    if op.kind == "se":
        part = Part("se", SqueezeExcite(op["c"], op["se"], op["gate"]))
    elif op.kind == "add":
        part = Part("add", Add())
    else:
        raise ValueError(f"unknown op kind {op.kind!r}")
    net = ArchNet(OrderedDict(L0=part), shape[1:])
    init_weights(net, seed)
    return net.train(training), shape


def torch_module_and_inputs(target, batch: int = 1, seed: int = 0):
    """(eval module, [input tensor]) for an Arch or an Op: what the torch/gpu devices time."""
    import torch

    if isinstance(target, (Op, str)):
        module, shape = build_torch_op(target, batch=batch, seed=seed)
    else:
        module = build_torch(target, seed=seed)
        shape = (batch, target.in_channels, target.resolution, target.resolution)
    g = torch.Generator().manual_seed(seed)
    return module.eval(), [torch.randn(*shape, generator=g)]
