"""`latbench export`: an Arch as the file a user deploys, from the builders the profiler measures.

The same `build_torch` network (seed-0 weights, eval mode) the cpu/gpu devices time, exported the
way they run it: ONNX through `export_onnx` (what the `ort` runtime loads), TFLite through
`convert_tflite` (Keras mirror with the torch weights, float32, what `tflite` and Android's
benchmark_model run), TorchScript by tracing the torch module (what the `torch` runtime calls).
So a table's prediction for the arch applies to the exported graph. The weights are the builders'
seeded ones, not trained: the file is the architecture to train or deploy, with the measured cost.
Input layouts: ONNX and TorchScript NCHW, TFLite NHWC (as TFLite models are).
"""
from __future__ import annotations

from pathlib import Path

from ..arch import Arch
from ..errors import BadInput
from ..fileio import atomic_write

FORMATS = ("onnx", "tflite", "torchscript")
SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite", "torchscript": ".pt"}


def export_arch(arch: Arch, fmt: str, path, batch: int = 1) -> dict:
    """Write `arch` as `fmt` to `path` (atomically); returns what was written (path, format, input shape)."""
    if fmt not in FORMATS:
        raise BadInput(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if batch < 1:
        raise BadInput(f"--batch: must be at least 1, got {batch}")
    path = Path(path)
    nchw = (batch, arch.in_channels, arch.resolution, arch.resolution)
    if fmt == "onnx":
        from .onnx_export import export_onnx

        export_onnx(arch, path, batch=batch)
        shape = nchw
    elif fmt == "tflite":
        from .tflite_convert import convert_tflite

        blob = convert_tflite(arch, batch)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))
        shape = (batch, arch.resolution, arch.resolution, arch.in_channels)
    else:
        import warnings

        import torch

        from .torch_model import build_torch

        net = build_torch(arch).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 steers to torch.export
            with torch.no_grad():
                traced = torch.jit.trace(net, torch.zeros(nchw))
            atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp)))
        shape = nchw
    return {"name": arch.name, "format": fmt, "path": str(path), "bytes": path.stat().st_size,
            "input_shape": list(shape), "layout": "NHWC" if fmt == "tflite" else "NCHW",
            "macs": arch.macs, "params": arch.params}
