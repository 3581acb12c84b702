"""Model builders: one Arch (or one Op) as the same network in PyTorch, ONNX and TFLite.

Naming contract shared by every backend, so a runtime profiler's per-node times map back to
`latbench.ops.OpUse(layer_index, part)`:

- layer ``i`` of the arch is the module/scope ``L{i}``;
- inside an mbconv block the parts are ``expand``, ``dw``, ``se``, ``project`` and ``add``;
- PyTorch/ONNX write scopes with ``/`` (``/L3/dw/conv/Conv``), Keras/TFLite with ``_``
  (``L3_dw_conv``). `parse_layer_name` reads both.

This package imports nothing heavy; the builders live in submodules (``torch_model``,
``onnx_export``, ``keras_model``, ``tflite_convert``) and are also reachable lazily as attributes
(``latbench.build.build_torch`` imports torch on first use only).
"""
from __future__ import annotations

import importlib
import re

from ..arch import Arch, normalise_layer
from ..ops import Op

PARTS = ("expand", "dw", "se", "project", "add")

_NAME_RE = re.compile(r"(?<![A-Za-z0-9])L(\d+)(?:[/_.](%s)(?![A-Za-z0-9]))?(?![0-9])" % "|".join(PARTS))


def parse_layer_name(name: str):
    """``(layer_index, part)`` for a node/op/tensor name built here, ``part`` "" for a whole
    layer; None when the name belongs to no layer (graph inputs, outputs, glue)."""
    m = _NAME_RE.search(name or "")
    if m is None:
        return None
    return int(m.group(1)), m.group(2) or ""


def op_arch(op: Op):
    """A one-layer Arch computing `op` (kinds conv, mbconv, pool, fc); None for se and add.

    An fc op takes an N x i x 1 x 1 input, as it does after the global pool in a network.
    """
    d = op.as_dict()
    if op.kind == "conv":
        layer = {"type": "conv", "out": d["o"], "kernel": d["k"], "stride": d["s"], "groups": d["g"],
                 "act": d["act"], "bn": bool(d["bn"])}
        res, cin = d["r"], d["i"]
    elif op.kind == "mbconv":
        layer = {"type": "mbconv", "out": d["o"], "mid": d["m"], "kernel": d["k"], "stride": d["s"],
                 "se": d["se"], "se_gate": d["gate"], "act": d["act"], "residual": bool(d["res"])}
        if "x" in d:  # has a 1x1 expansion conv (needed when mid == in)
            layer["expand_conv"] = bool(d["x"])
        res, cin = d["r"], d["i"]
    elif op.kind == "cbconv":
        layer = {"type": "conv", "out": d["m"], "kernel": d["k"], "stride": d["s"], "act": d["act"],
                 "bn": bool(d["bn"]), "bypass": True if d["dw"] else d["o"], "depthwise": bool(d["dw"])}
        res, cin = d["r"], d["i"]
    elif op.kind == "mbcbc":
        layer = {"type": "mbconv", "out": d["o"], "mid": d["m"] if d["x"] else d["i"], "expand_conv": bool(d["x"]),
                 "dw": d["d"], "bypass": d["t"] or True, "kernel": d["k"], "stride": d["s"], "se": d["se"],
                 "se_gate": d["gate"], "act": d["act"], "residual": bool(d["res"])}
        res, cin = d["r"], d["i"]
    elif op.kind == "pool":
        layer, res, cin = {"type": "pool"}, d["r"], d["c"]
    elif op.kind == "fc":
        layer, res, cin = {"type": "fc", "out": d["o"], "act": d["act"]}, 1, d["i"]
    else:
        return None
    arch = Arch(layers=[normalise_layer(layer, f"op {op.key}")], name=op.kind, resolution=res,
                in_channels=cin)
    arch.shapes()  # validate (e.g. res=1 on a block that cannot have a residual)
    return arch


def op_input_shape(op: Op, batch: int = 1) -> tuple:
    """NCHW input shape of the isolated op."""
    if op.kind == "fc":
        return (batch, op["i"], 1, 1)
    if op.kind == "addpad":
        return (batch, max(op["i"], op["o"]), op["r"], op["r"])
    return (batch, op.in_channels, op.resolution, op.resolution)


_LAZY = {
    "build_torch": "torch_model", "build_torch_op": "torch_model",
    "export_onnx": "onnx_export", "onnx_node_layer": "onnx_export",
    "build_keras": "keras_model", "build_keras_op": "keras_model",
    "to_tflite": "tflite_convert", "to_onnx": "tflite_convert", "tflite_interpreter": "tflite_convert",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
