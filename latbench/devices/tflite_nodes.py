"""Map benchmark_model op-profile rows back to the network's ops (for `context` tables on a phone).

Two kinds of rows reach here (after the parser dropped an enclosing ``TfLiteXNNPackDelegate``
row whose per-op rows are present):

- TFLite kernel rows (no delegate, or ops the delegate left out): named by their output tensors,
  ``[L3_dw_conv_1;...]:7`` (TF 2.x) or ``[L3_dw_conv_1]`` (1.x); the tensor names carry the
  Keras layer names, read by `latbench.build.tflite_convert.tflite_op_layer`;
- XNNPACK rows, ``Delegate/Convolution (NHWC, F32) DWConv:4``: the name is XNNPACK's operator
  type and its index in XNNPACK's runtime, not a tensor name. XNNPACK runs the delegated TFLite
  nodes in their execution order, one operator each, except nodes it fuses into a neighbour
  (a constant PAD into the convolution after it, a RELU into the op before it). So the rows are
  aligned with the delegated TFLite ops in order: each row takes the next op whose kind that
  XNNPACK operator type implements; ops skipped on the way were fused; a row that matches no op
  ahead is charged to the op of the row before it.

Times are per inference: a row's per-call ``avg_ms`` times its calls per run.
"""
from __future__ import annotations

import re

from ..errors import DeviceError

# XNNPACK operator type (the part of the row's node type before " (") -> TFLite builtin ops it runs
XNNPACK_TO_TFLITE = {
    "Convolution": {"CONV_2D", "DEPTHWISE_CONV_2D"},
    "Deconvolution": {"TRANSPOSE_CONV"},
    "Fully Connected": {"FULLY_CONNECTED", "BATCH_MATMUL"},
    "Batch Matrix Multiply": {"BATCH_MATMUL"},
    "Add": {"ADD"},
    "Multiply": {"MUL"},
    "Subtract": {"SUB"},
    "Divide": {"DIV"},
    "Global Average Pooling": {"MEAN", "AVERAGE_POOL_2D"},
    "Global Sum Pooling": {"SUM"},
    "Mean": {"MEAN"},
    "Average Pooling": {"AVERAGE_POOL_2D"},
    "Max Pooling": {"MAX_POOL_2D"},
    "Copy": {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"},
    "Constant Pad": {"PAD", "PADV2"},
    "HardSwish": {"HARD_SWISH"},
    "Sigmoid": {"LOGISTIC"},
    "Clamp": {"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"},
    "Softmax": {"SOFTMAX"},
    "Concatenate": {"CONCATENATION"},
    "Transpose": {"TRANSPOSE"},
    "Resize Bilinear": {"RESIZE_BILINEAR"},
    "Leaky ReLU": {"LEAKY_RELU"},
    "ELU": {"ELU"},
    "Tanh": {"TANH"},
    "Square Root": {"SQRT"},
    "Square": {"SQUARE"},
}

_TENSORS_RE = re.compile(r"^\[(.*)\](?::\d+)?$")


def xnnpack_kind(node_type: str) -> str:
    """``Convolution (NHWC, F32) IGEMM`` -> ``Convolution``."""
    return node_type.split(" (", 1)[0].strip()


def tflite_ops(path) -> list[dict]:
    """The TFLite ops of a .tflite in execution order: [{"index", "kind", "outputs": [tensor names]}],
    read with the plain builtin kernels (no delegate replaces them)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        interp = Interpreter(model_path=str(path),
                             experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except ImportError:
        try:
            import tensorflow as tf
        except ImportError:
            raise DeviceError("mapping a phone's op profile needs ai-edge-litert or tensorflow on the host "
                              "(pip install latbench[tflite])") from None
        interp = tf.lite.Interpreter(model_path=str(path),
                                     experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    ops = []
    for op in sorted(interp._get_ops_details(), key=lambda o: o["index"]):
        if op["op_name"] == "DELEGATE":
            continue
        ops.append({"index": op["index"], "kind": op["op_name"],
                    "outputs": [names.get(i, "") for i in op["outputs"] if i >= 0]})
    return ops


def row_tensors(name: str) -> list[str]:
    """Output tensor names of a TFLite kernel row (``[a, b]:3`` -> [a, b]); [] for other rows."""
    m = _TENSORS_RE.match(name.strip())
    return [t.strip() for t in m.group(1).split(", ")] if m else []


def map_rows(rows: list, ops: list, arch=None) -> list[dict]:
    """Profile rows -> [{"name", "op", "tensor", "layer", "part", "ms"}] (ms per inference).

    `ops`: `tflite_ops` of the profiled model; `arch`: the Arch it was built from (maps the renamed
    graph output to its last op). Rows that map to no layer keep layer None (they still count in
    the network's total)."""
    from ..build.tflite_convert import tflite_op_layer

    def slot(tensor):
        hit = tflite_op_layer(tensor, arch) if tensor else None
        return hit if hit is not None else (None, "")

    kernel_outputs = {t for r in rows if not r["name"].startswith("Delegate/") for t in row_tensors(r["name"])}
    # the ops a delegate ran: those no kernel row names (a kernel row is an op the delegate left out)
    delegated = [op for op in ops if not set(op["outputs"]) & kernel_outputs]
    out, j, last = [], 0, None
    for r in rows:
        ms = float(r["avg_ms"]) * max(1, int(r.get("times_called") or 1))
        if r["name"].startswith("Delegate/"):
            kinds = XNNPACK_TO_TFLITE.get(xnnpack_kind(r["node_type"]), set())
            k = next((k for k in range(j, len(delegated)) if delegated[k]["kind"] in kinds), None)
            if k is not None:
                last, j = delegated[k], k + 1
            op = last
            tensor = op["outputs"][0] if op and op["outputs"] else ""
            kind = op["kind"] if op else None
        else:
            names = row_tensors(r["name"])
            tensor = names[0] if names else ""
            kind = r["node_type"]
        layer, part = slot(tensor)
        out.append({"name": r["name"], "op": kind, "tensor": tensor, "layer": layer, "part": part,
                    "ms": round(ms, 9)})
    return out
