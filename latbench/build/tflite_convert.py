"""Float32 TFLite conversion (Keras -> tf.lite.TFLiteConverter), cached, and a LiteRT interpreter.

`to_tflite` converts an Arch or Op through `keras_model` (weights copied from the seed-0 torch
build, so the .tflite and `to_onnx`'s .onnx compute the same function) and caches the file by
content (see `cache`). Conversion costs ~0.4 s for a small model plus a one-off ~7 s to import
TensorFlow; a cache hit imports nothing heavy.

TFLite tensor names carry the Keras layer names (``tiny_1/L3_dw_conv_1/depthwise``; fused ops
join names with ``;``), except the graph output, which the converter renames (``Identity``):
`tflite_op_layer` maps that one to the arch's last op.
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
from pathlib import Path

from ..ops import Op, decompose
from . import parse_layer_name
from .cache import as_arch_or_op, cache_path, cache_root, cached_file, dist_version
from .onnx_export import to_onnx  # noqa: F401  (cached ONNX export, same cache scheme)


def keras_to_tflite(model) -> bytes:
    """Float32 flatbuffer of a Keras model with static input shape.

    Freezes the inference function and converts it with `from_concrete_functions` (~0.4 s for a
    small net, 3-4x faster than `from_keras_model`, which first writes a SavedModel; same ops and
    layer-named tensors, output tensor ``Identity``); falls back to `from_keras_model` when the
    freezing helper is unavailable.
    """
    import tensorflow as tf

    try:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    except ImportError:
        convert_variables_to_constants_v2 = None
    if convert_variables_to_constants_v2 is None:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints "Saved artifact at ..."
            return tf.lite.TFLiteConverter.from_keras_model(model).convert()
    spec = tf.TensorSpec(model.inputs[0].shape, tf.float32, name="input")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(fn)
    absl = logging.getLogger("absl")  # silence "consider providing the trackable_obj argument"
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        return tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()
    finally:
        absl.setLevel(level)


def convert_tflite(arch_or_op, batch: int = 1) -> bytes:
    """The float32 .tflite flatbuffer of an Arch or Op (no cache)."""
    from .keras_model import build_keras, build_keras_op

    obj = as_arch_or_op(arch_or_op)
    model = build_keras_op(obj, batch=batch) if isinstance(obj, Op) else build_keras(obj, batch=batch)
    return keras_to_tflite(model)


def to_tflite(arch_or_op, cache_dir=None, batch: int = 1) -> Path:
    """Path of the cached float32 .tflite for an Arch, an Op or an op key.

    Cache: `cache_dir`, else ``$LATBENCH_CACHE/tflite``, else ``~/.cache/latbench/tflite``; keyed
    by the network, batch and the TensorFlow and Keras versions; written atomically.
    """
    obj = as_arch_or_op(arch_or_op)
    path = cache_path(obj, cache_root(cache_dir, "tflite"), "tflite", batch=batch,
                      tf=dist_version("tensorflow"), keras=dist_version("keras"))
    return cached_file(path, lambda tmp: tmp.write_bytes(convert_tflite(obj, batch)))


def interpreter_version() -> str:
    """Which TFLite interpreter `tflite_interpreter` uses, with its version (for fingerprints)."""
    for module, dist in (("ai_edge_litert", "ai-edge-litert"), ("tflite_runtime", "tflite-runtime"),
                         ("tensorflow", "tensorflow-cpu")):
        try:
            __import__(module)
        except ImportError:
            continue
        return f"{dist} {dist_version(module)}"
    raise ImportError("no TFLite interpreter (pip install ai-edge-litert)", name="ai_edge_litert")


def tflite_interpreter(path, threads: int = 1):
    """An allocated interpreter for `path`: LiteRT (``ai_edge_litert``) if installed, else
    ``tflite_runtime``, else ``tf.lite``; the builtin resolver applies the XNNPACK delegate."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    return interp


_OUTPUT_RE = re.compile(r"^(Identity(_\d+)?|.*PartitionedCall.*)$")


def tflite_op_layer(tensor_name: str, arch=None):
    """``(layer_index, part)`` of a TFLite op from its output tensor name (what op profiles print);
    the renamed graph output (``Identity``, ``StatefulPartitionedCall:0``) maps to the last op of
    `arch` at layer granularity when `arch` (an Arch) is given. None when unmappable."""
    hit = parse_layer_name(tensor_name)
    if hit is None and arch is not None and _OUTPUT_RE.match(tensor_name):
        last = decompose(arch, "layer")[-1]
        return last.layer_index, last.part
    return hit
