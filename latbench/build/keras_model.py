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
from .keras_layers import _apply, _np, conv_bn_act, fc, mbconv, squeeze_excite  # noqa: E402,F401

MODEL_NAME = "net"  # fixed, so an arch name can never look like a layer scope in tensor names
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
