"""Keras (NHWC) builders that mirror `torch_model` exactly and copy its weights.

Layer names follow the package's naming contract with ``_``: ``L{i}_conv``, ``L{i}_bn``,
``L{i}_act`` for a conv layer, ``L{i}_{part}_conv`` ... inside an mbconv, ``L{i}_se_squeeze`` etc.
for squeeze-and-excite, ``L{i}_add``, ``L{i}_pool``, ``L{i}_flatten`` / ``L{i}_fc``. A conv with
stride > 1 pads explicitly (``ZeroPadding2D(k // 2)`` + 'valid'), because Keras 'same' pads
asymmetrically for stride 2 on even inputs while PyTorch pads k // 2 on both sides.
BatchNormalization layers keep eps 1e-5 and the torch running statistics (the TFLite converter
folds them into the convs). Weights come from the torch module, so all backends compute the same
function.
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # the TFLite converter needs the TF backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ INFO/WARNING logs off stderr

import keras  # noqa: E402
from keras import layers  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"latbench.build.keras_model needs the Keras TensorFlow backend, "
                      f"KERAS_BACKEND is {keras.backend.backend()!r}")

from ..arch import Arch  # noqa: E402
from ..ops import Op, op_from_key  # noqa: E402
from . import op_arch, op_input_shape  # noqa: E402

MODEL_NAME = "net"  # fixed, so an arch name can never look like a layer scope in tensor names
_ACTS = {"relu": lambda n: layers.ReLU(name=n), "relu6": lambda n: layers.ReLU(6.0, name=n),
         "swish": lambda n: layers.Activation("silu", name=n),
         "hswish": lambda n: layers.Activation("hard_silu", name=n)}
# Keras 3: hard_sigmoid = relu6(x + 3) / 6 and hard_silu = x * hard_sigmoid(x), as in PyTorch.
_GATES = {"Sigmoid": "sigmoid", "Hardsigmoid": "hard_sigmoid"}


def _np(t):
    return t.detach().cpu().numpy()


def _apply(layer, x, weights):
    """Call `layer` on `x` (which builds it), then load `weights`."""
    y = layer(x)
    layer.set_weights(weights)
    return y


def conv_bn_act(x, tm, prefix: str):
    """Mirror of `torch_model.ConvBNAct` `tm`: [pad] conv / depthwise / grouped conv, [BN], [act]."""
    import torch.nn as nn

    conv = tm.conv
    k, s, g = conv.kernel_size[0], conv.stride[0], conv.groups
    cin, cout = conv.in_channels, conv.out_channels
    use_bias = conv.bias is not None
    padding = "same" if s == 1 else "valid"
    if s > 1 and k > 1:
        x = layers.ZeroPadding2D(k // 2, name=f"{prefix}_pad")(x)
    w = _np(conv.weight)  # (cout, cin // g, k, k)
    bias = [_np(conv.bias)] if use_bias else []
    if g == cin and g > 1 and cout % cin == 0:
        layer = layers.DepthwiseConv2D(k, s, padding, depth_multiplier=cout // cin, use_bias=use_bias,
                                       name=f"{prefix}_conv")
        kernel = w.transpose(2, 3, 0, 1).reshape(k, k, cin, cout // cin)
    else:
        layer = layers.Conv2D(cout, k, s, padding, groups=g, use_bias=use_bias, name=f"{prefix}_conv")
        kernel = w.transpose(2, 3, 1, 0)
    x = _apply(layer, x, [kernel] + bias)
    bn = getattr(tm, "bn", None)
    if isinstance(bn, nn.BatchNorm2d):
        x = _apply(layers.BatchNormalization(epsilon=bn.eps, name=f"{prefix}_bn"), x,
                   [_np(bn.weight), _np(bn.bias), _np(bn.running_mean), _np(bn.running_var)])
    act = getattr(tm, "act", None)
    if act is not None:
        x = _ACTS[_act_name(act)](f"{prefix}_act")(x)
    return x


def _act_name(module) -> str:
    import torch.nn as nn

    for name, cls in (("relu6", nn.ReLU6), ("relu", nn.ReLU), ("swish", nn.SiLU), ("hswish", nn.Hardswish)):
        if isinstance(module, cls):
            return name
    raise ValueError(f"no Keras activation for {type(module).__name__}")


def squeeze_excite(x, tm, prefix: str):
    """Mirror of `torch_model.SqueezeExcite`."""
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}_pool")(x)
    for name, conv in (("squeeze", tm.squeeze), ("excite", tm.excite)):
        layer = layers.Conv2D(conv.out_channels, 1, use_bias=True, name=f"{prefix}_{name}")
        s = _apply(layer, s, [_np(conv.weight).transpose(2, 3, 1, 0), _np(conv.bias)])
        if name == "squeeze":
            s = layers.ReLU(name=f"{prefix}_act")(s)
    s = layers.Activation(_GATES[type(tm.gate).__name__], name=f"{prefix}_gate")(s)
    return layers.Multiply(name=f"{prefix}_mul")([x, s])


def mbconv(x, tm, prefix: str):
    """Mirror of `torch_model.MBConv`."""
    y = conv_bn_act(x, tm.expand, f"{prefix}_expand") if tm.expand is not None else x
    y = conv_bn_act(y, tm.dw, f"{prefix}_dw")
    if tm.se is not None:
        y = squeeze_excite(y, tm.se, f"{prefix}_se")
    y = conv_bn_act(y, tm.project, f"{prefix}_project")
    return layers.Add(name=f"{prefix}_add")([x, y]) if tm.add is not None else y


def fc(x, tm, prefix: str):
    """Mirror of `torch_model.FC`: flatten (NHWC 1x1 flattens like NCHW 1x1), dense, act."""
    x = layers.Flatten(name=f"{prefix}_flatten")(x)
    dense = layers.Dense(tm.fc.out_features, name=f"{prefix}_fc")
    x = _apply(dense, x, [_np(tm.fc.weight).T, _np(tm.fc.bias)])
    if tm.act is not None:
        x = _ACTS[_act_name(tm.act)](f"{prefix}_act")(x)
    if tm.keep4d:
        x = layers.Reshape((1, 1, tm.fc.out_features), name=f"{prefix}_reshape")(x)
    return x


def _layer(x, shape, tm, prefix: str):
    if shape.cbc is not None:
        from .keras_cbc import cbc_layer

        return cbc_layer(x, shape, tm, prefix)
    t = shape.type
    if t == "conv":
        return conv_bn_act(x, tm, prefix)
    if t == "mbconv":
        return mbconv(x, tm, prefix)
    if t == "pool":
        return layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}_pool")(x)
    return fc(x, tm, prefix)


def _input(nchw: tuple):
    n, c, h, w = nchw
    return keras.Input(shape=(h, w, c), batch_size=n, name="input")


def build_keras(arch: Arch, weights_from=None, batch: int = 1) -> keras.Model:
    """`arch` in Keras, NHWC input (batch, H, W, C), weights copied from `weights_from` (an
    `ArchNet` from `build_torch(arch)`; built with the default seed when None). The output is
    NHWC where torch's is NCHW (identical for an fc head: N x classes)."""
    from .torch_model import build_torch

    net = weights_from if weights_from is not None else build_torch(arch)
    inp = x = _input(net.input_shape(batch))
    for s in arch.shapes():
        x = _layer(x, s, getattr(net, f"L{s.index}"), f"L{s.index}")
    return keras.Model(inp, x, name=MODEL_NAME)


def build_keras_op(op: Op | str, weights_from=None, batch: int = 1) -> keras.Model:
    """One isolated op in Keras, mirroring `build_torch_op(op)` (its module as `weights_from`;
    built with the default seed when None). Add is ``x + x`` on one input, like in torch."""
    from .torch_model import build_torch_op

    if isinstance(op, str):
        op = op_from_key(op)
    arch = op_arch(op)
    net = weights_from if weights_from is not None else build_torch_op(op, batch)[0]
    if arch is not None:
        return build_keras(arch, net, batch)
    inp = _input(op_input_shape(op, batch))
    if op.kind == "se":
        out = squeeze_excite(inp, net.L0.se, "L0_se")
    elif op.kind == "addpad":
        from .keras_cbc import _slice, pad_add

        m = net.L0.add
        out = pad_add(_slice(inp, 0, m.i, 1, "L0_add_x"), _slice(inp, 0, m.o, 1, "L0_add_y"), m, "L0")
    else:
        out = layers.Add(name="L0_add")([inp, inp])
    return keras.Model(inp, out, name=MODEL_NAME)
