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
from .torch_layers import (BN_EPS, FC, Add, ConvBNAct, MBConv, Part, SqueezeExcite,  # noqa: F401
                           make_act)

class ArchNet(nn.Sequential):
    """The network: children ``L0``, ``L1``, ... in arch order; `input_shape(batch)` is NCHW."""

    def __init__(self, modules: OrderedDict, in_shape: tuple):
        super().__init__(modules)
        self.in_shape = tuple(in_shape)  # (C, H, W)

    def input_shape(self, batch: int = 1) -> tuple:
        return (batch,) + self.in_shape


def layer_module(shape, next_type: str | None = None) -> nn.Module:
    """The module for one `LayerShape` of an arch."""
    if shape.cbc is not None:
        from .torch_cbc import cbc_layer_module

        return cbc_layer_module(shape)
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
    elif op.kind == "addpad":
        from .torch_cbc import IsolatedPadAdd

        part = Part("add", IsolatedPadAdd(op["i"], op["o"]))
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
