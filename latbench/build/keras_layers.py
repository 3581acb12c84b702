"""Keras (NHWC) mirrors of the torch modules in `torch_layers`, weights copied from them; shared by
`keras_model` and the channel-level-bypass builders (`keras_cbc`). Naming contract: see keras_model."""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # the TFLite converter needs the TF backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ INFO/WARNING logs off stderr

import keras  # noqa: E402
from keras import layers  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"latbench.build.keras_layers needs the Keras TensorFlow backend, "
                      f"KERAS_BACKEND is {keras.backend.backend()!r}")

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
