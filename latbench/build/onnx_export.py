"""ONNX export of an Arch, an Op or a built module, and mapping node names back to layers.

Exporter: the legacy TorchScript exporter (``torch.onnx.export(..., dynamo=False)``). In torch 2.13
the default is the dynamo exporter, but it names nodes ``node_Conv_161`` / ``node_relu`` (the
module path survives only in node metadata), supports opset >= 18 only, and takes ~6 s for a
tiny net; the legacy exporter takes ~0.1 s, honours opset 17 and names every node by its module
scope: ``/L3/dw/conv/Conv``, ``/L3/se/Mul``, ``/L3/add/Add``, ``/L0/act/HardSwish``. In eval mode
it folds BatchNorm into the preceding Conv.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from ..arch import Arch
from ..ops import Op
from . import parse_layer_name
from ..fileio import atomic_write
from .cache import as_arch_or_op, cache_path, cache_root, cached_file, dist_version

INPUT_NAME, OUTPUT_NAME = "input", "output"
DEFAULT_OPSET = 17


def onnx_node_layer(node_name: str):
    """``(layer_index, part)`` of an ONNX node name (``/L3/dw/conv/Conv`` -> ``(3, "dw")``,
    ``/L0/conv/Conv`` -> ``(0, "")``); also reads ORT profiler names (``..._kernel_time``,
    fused-node suffixes). None for nodes outside any layer."""
    return parse_layer_name(node_name)


def _module_and_shape(obj, batch: int, input_shape):
    from .torch_model import ArchNet, build_torch, build_torch_op

    if isinstance(obj, (Arch, Op, str)):
        obj = as_arch_or_op(obj)
        if isinstance(obj, Op):
            return build_torch_op(obj, batch)
        net = build_torch(obj)
        return net, net.input_shape(batch)
    if input_shape is None:
        if not isinstance(obj, ArchNet):
            raise ValueError("export_onnx: give input_shape for a module that is not an ArchNet")
        input_shape = obj.input_shape(batch)
    return obj, tuple(input_shape)


def export_onnx(module_or_arch, path, batch: int = 1, opset: int = DEFAULT_OPSET, input_shape=None) -> Path:
    """Export an Arch, an Op (or op key) or a module to `path` (atomically); returns `path`.

    A module is exported as it is (call ``.eval()`` first for inference graphs); an `ArchNet`
    knows its input shape, any other module needs `input_shape` (NCHW, batch included).
    """
    import torch

    module, shape = _module_and_shape(module_or_arch, batch, input_shape)
    x = torch.zeros(shape)

    def write(tmp: Path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based export"
            torch.onnx.export(module, (x,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True)

    return atomic_write(path, write)


def to_onnx(arch_or_op, cache_dir=None, batch: int = 1, opset: int = DEFAULT_OPSET) -> Path:
    """Cached `export_onnx` of an Arch or Op (seed-0 weights): the path of the .onnx file.

    Cache: `cache_dir`, else ``$LATBENCH_CACHE/onnx``, else ``~/.cache/latbench/onnx``; keyed by
    the network, batch, opset and torch version.
    """
    obj = as_arch_or_op(arch_or_op)
    path = cache_path(obj, cache_root(cache_dir, "onnx"), "onnx", batch=batch, opset=opset,
                      torch=dist_version("torch"))
    return cached_file(path, lambda tmp: export_onnx(obj, tmp, batch=batch, opset=opset))
