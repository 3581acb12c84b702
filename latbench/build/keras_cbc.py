"""Keras mirrors of `torch_cbc` (channel-level bypass), weights copied from the torch modules.

Slices are named Lambda layers (``L3_dw_slice``, ``L3_dw_bypass``) and merges Concatenate layers
(``L3_dw_cat``), so TFLite tensor names keep mapping to (layer, part).
"""
from __future__ import annotations

from keras import layers

from .keras_layers import conv_bn_act, squeeze_excite


def _slice(x, lo, hi, stride, name):
    return layers.Lambda(lambda t, a=lo, b=hi, s=stride: t[:, ::s, ::s, a:b], name=name)(x)


def cb_conv(x, tm, prefix: str):
    """Mirror of `torch_cbc.CBConv` `tm` (None: identity)."""
    if tm is None:
        return x
    parts = []
    if tm.body is not None:
        inp = _slice(x, 0, tm.m, 1, f"{prefix}_slice") if tm.depthwise and tm.m < tm.cin else x
        parts.append(conv_bn_act(inp, tm.body, prefix))
    if tm.z > tm.m:
        parts.append(_slice(x, tm.m, tm.z, tm.stride, f"{prefix}_bypass"))
    return parts[0] if len(parts) == 1 else layers.Concatenate(axis=-1, name=f"{prefix}_cat")(parts)


def pad_add(x, y, tm, prefix: str):
    """Mirror of `torch_cbc.PadAdd` (`Add` when the widths match)."""
    i, o = getattr(tm, "i", None), getattr(tm, "o", None)
    if i is None or i == o:
        return layers.Add(name=f"{prefix}_add")([x, y])
    n = min(i, o)
    head = layers.Add(name=f"{prefix}_add")([_slice(x, 0, n, 1, f"{prefix}_add_a"), _slice(y, 0, n, 1, f"{prefix}_add_b")])
    tail = _slice(x if i > o else y, n, max(i, o), 1, f"{prefix}_add_tail")
    return layers.Concatenate(axis=-1, name=f"{prefix}_add_cat")([head, tail])


def cb_mbconv(x, tm, prefix: str):
    """Mirror of `torch_cbc.CBMBConv`."""
    if tm.identity:
        return x
    y = cb_conv(x, tm.expand, f"{prefix}_expand")
    y = cb_conv(y, tm.dw, f"{prefix}_dw")
    if tm.se is not None:
        y = squeeze_excite(y, tm.se, f"{prefix}_se")
    y = cb_conv(y, tm.project, f"{prefix}_project")
    return pad_add(x, y, tm.add, prefix) if tm.add is not None else y


def cbc_layer(x, shape, tm, prefix: str):
    if shape.type == "mbconv":
        return cb_mbconv(x, tm, prefix)
    return x if not hasattr(tm, "body") else cb_conv(x, tm, prefix)
