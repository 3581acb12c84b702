"""Model builders: one Arch / Op is the same network in PyTorch, ONNX Runtime and LiteRT."""
import os
import subprocess
import sys

import numpy as np
import pytest

from latbench.arch import parse_arch
from latbench.build import op_arch, parse_layer_name
from latbench.ops import decompose, make_op

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from latbench.build.onnx_export import export_onnx, onnx_node_layer, to_onnx  # noqa: E402
from latbench.build.torch_model import build_torch, build_torch_op  # noqa: E402


def arch_of(name, res, layers, cin=3):
    return parse_arch({"format": "latbench-arch/1", "name": name, "resolution": res, "in_channels": cin,
                       "layers": layers})


# Every layer type and option: stride-2 convs on even maps (padding), mbconv with and without
# expansion, SE sigmoid / hsigmoid, residual, every activation, grouped conv, pool, 1x1 conv after pool, fc.
TINY = arch_of("tiny", 32, [
    {"type": "conv", "out": 16, "kernel": 3, "stride": 2, "act": "hswish"},
    {"type": "mbconv", "mid": 16, "out": 16, "kernel": 3, "stride": 1, "se": 4, "act": "relu"},
    {"type": "mbconv", "expand": 3, "out": 24, "kernel": 5, "stride": 2, "se": 8, "se_gate": "hsigmoid",
     "act": "swish"},
    {"type": "mbconv", "expand": 4, "out": 24, "kernel": 3, "stride": 1, "act": "relu6"},
    {"type": "conv", "out": 32, "kernel": 3, "groups": 2, "act": "none", "bn": False},
    {"type": "conv", "out": 64, "kernel": 1, "act": "relu"},
    {"type": "pool"},
    {"type": "conv", "out": 48, "kernel": 1, "act": "hswish", "bn": False},
    {"type": "fc", "out": 10}])

# Odd resolution, 4 input channels, k7 stride 2, stride-2 pointwise conv, depthwise with multiplier 2,
# a block with residual disabled, a forced 1x1 expansion with mid == in, fc -> 1x1 conv -> fc.
TINY2 = arch_of("tiny2", 33, [
    {"type": "conv", "out": 24, "kernel": 5, "stride": 2, "act": "relu6"},
    {"type": "mbconv", "expand": 6, "out": 24, "kernel": 7, "stride": 2, "se": 4, "se_gate": "hsigmoid",
     "act": "swish"},
    {"type": "mbconv", "mid": 48, "out": 24, "kernel": 3, "stride": 1, "act": "hswish", "residual": False},
    {"type": "mbconv", "expand": 1, "expand_conv": True, "out": 24, "kernel": 3, "act": "relu"},
    {"type": "conv", "out": 48, "kernel": 3, "stride": 1, "groups": 24, "act": "relu"},
    {"type": "conv", "out": 32, "kernel": 1, "stride": 2, "act": "swish"},
    {"type": "pool"},
    {"type": "fc", "out": 32, "act": "relu"},
    {"type": "conv", "out": 16, "kernel": 1, "act": "relu6"},
    {"type": "fc", "out": 5}], cin=4)


def mobilenetv3_large(res=64):
    """MobileNetV3-Large (Howard et al. 2019, Table 1) at a reduced resolution."""
    rows = [(16, 16, 3, 1, 0, "relu"), (64, 24, 3, 2, 0, "relu"), (72, 24, 3, 1, 0, "relu"),
            (72, 40, 5, 2, 24, "relu"), (120, 40, 5, 1, 32, "relu"), (120, 40, 5, 1, 32, "relu"),
            (240, 80, 3, 2, 0, "hswish"), (200, 80, 3, 1, 0, "hswish"), (184, 80, 3, 1, 0, "hswish"),
            (184, 80, 3, 1, 0, "hswish"), (480, 112, 3, 1, 120, "hswish"), (672, 112, 3, 1, 168, "hswish"),
            (672, 160, 5, 2, 168, "hswish"), (960, 160, 5, 1, 240, "hswish"), (960, 160, 5, 1, 240, "hswish")]
    layers = [{"type": "conv", "out": 16, "kernel": 3, "stride": 2, "act": "hswish"}]
    layers += [{"type": "mbconv", "mid": m, "out": o, "kernel": k, "stride": s, "se": se, "se_gate": "hsigmoid",
                "act": a} for m, o, k, s, se, a in rows]
    layers += [{"type": "conv", "out": 960, "kernel": 1, "act": "hswish"}, {"type": "pool"},
               {"type": "conv", "out": 1280, "kernel": 1, "act": "hswish", "bn": False},
               {"type": "fc", "out": 1000}]
    return arch_of("MobileNetV3-Large", res, layers)


ARCHS = {"tiny": TINY, "tiny2": TINY2, "mbv3": mobilenetv3_large(64)}


def rel_err(got, ref):
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def to_nhwc(x):
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def to_nchw(x):
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x


def run_torch(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def run_ort(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def run_tflite(path, x):
    from latbench.build.tflite_convert import tflite_interpreter

    interp = tflite_interpreter(path)
    interp.set_tensor(interp.get_input_details()[0]["index"], to_nhwc(x))
    interp.invoke()
    return to_nchw(interp.get_tensor(interp.get_output_details()[0]["index"]))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def valid_parts(arch):
    return {(u.layer_index, u.part) for u in decompose(arch, "layer")}


# ---------------------------------------------------------------------- light imports, names
def test_import_build_is_light():
    code = ("import sys, latbench.build, latbench.build.cache, latbench.build.onnx_export, "
            "latbench.build.tflite_convert\n"
            "heavy = [m for m in ('torch', 'tensorflow', 'keras', 'onnx', 'onnxruntime', 'ai_edge_litert') "
            "if m in sys.modules]\nassert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name, want", [
    ("/L3/dw/conv/Conv", (3, "dw")), ("/L0/conv/Conv", (0, "")), ("/L12/se/Mul", (12, "se")),
    ("/L7/add/Add", (7, "add")), ("/L1/expand/act/Clip", (1, "expand")), ("/L6/GlobalAveragePool", (6, "")),
    ("/L10/project/conv/Conv_kernel_time", (10, "project")),
    ("model_1/L3_dw_act_1/Relu;model_1/L3_dw_bn_1/batchnorm/add_1;model_1/L3_dw_conv_1/depthwise", (3, "dw")),
    ("tiny_1/L4_conv_1/BiasAdd;convolution", (4, "")), ("tiny_1/L2_se_gate_1/Relu6", (2, "se")),
    ("input", None), ("StatefulPartitionedCall_1:0", None), ("/Flatten", None)])
def test_parse_layer_name(name, want):
    assert parse_layer_name(name) == want
    assert onnx_node_layer(name) == want


def test_torch_build_is_deterministic_and_named():
    a, b = build_torch(TINY), build_torch(TINY)
    assert not a.training
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    assert [n for n, _ in a.named_children()] == [f"L{i}" for i in range(len(TINY.layers))]
    assert [n for n, m in a.L2.named_children() if m is not None] == ["expand", "dw", "se", "project"]
    assert [n for n, m in a.L1.named_children() if m is not None] == ["dw", "se", "project", "add"]
    assert a.L0.bn.running_var.min() > 0.5 and a.L0.bn.running_mean.abs().max() > 0  # not identity BN
    assert build_torch(TINY2).L3.expand is not None  # expand_conv forces it although mid == in
    assert build_torch_op(OPS[5])[0].L0.expand is not None and OPS[5]["x"] == 1


# ---------------------------------------------------------------------- whole networks
@pytest.mark.parametrize("name", list(ARCHS))
def test_arch_torch_onnx_tflite_agree(name, cache):
    pytest.importorskip("tensorflow")
    from latbench.build.tflite_convert import to_tflite

    arch = ARCHS[name]
    net = build_torch(arch)
    x = np.random.default_rng(1).standard_normal(net.input_shape(1)).astype(np.float32)
    ref = run_torch(net, x)
    assert ref.shape == (1, arch.num_classes)
    assert np.isfinite(ref).all() and np.abs(ref).max() > 1e-3

    onnx_path = to_onnx(arch, cache_dir=cache)  # builds its own torch net: same seed, same weights
    assert rel_err(run_ort(onnx_path, x), ref) < 1e-4

    tfl_path = to_tflite(arch, cache_dir=cache)
    assert rel_err(run_tflite(tfl_path, x), ref) < 1e-3

    # every ONNX node maps back to an OpUse of the arch, and every OpUse has nodes
    nodes = [n.name for n in onnx.load(str(onnx_path)).graph.node]
    mapped = [onnx_node_layer(n) for n in nodes]
    assert None not in mapped, [n for n, m in zip(nodes, mapped) if m is None]
    assert set(mapped) == valid_parts(arch)


def test_tflite_op_names_map_to_layers(cache):
    pytest.importorskip("tensorflow")
    from latbench.build.tflite_convert import tflite_interpreter, tflite_op_layer, to_tflite

    interp = tflite_interpreter(to_tflite(TINY, cache_dir=cache))
    if not hasattr(interp, "_get_ops_details"):
        pytest.skip("interpreter does not list ops")
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    ops = [o for o in interp._get_ops_details() if o["op_name"] != "DELEGATE"]
    mapped = {tflite_op_layer(names[o["outputs"][0]], TINY) for o in ops}
    assert mapped == valid_parts(TINY)


# ---------------------------------------------------------------------- isolated ops
OPS = [make_op("conv", r=16, i=8, o=16, k=3, s=2, g=1, act="relu6", bn=1),
       make_op("conv", r=15, i=16, o=16, k=5, s=2, g=16, act="swish", bn=1),
       make_op("conv", r=1, i=32, o=64, k=1, s=1, g=1, act="hswish", bn=0),
       make_op("mbconv", r=16, i=16, o=16, m=48, k=5, s=1, se=8, gate="hsigmoid", act="hswish", res=1),
       make_op("mbconv", r=16, i=16, o=24, m=16, k=3, s=2, se=0, gate="sigmoid", act="relu", res=0),
       make_op("mbconv", r=8, i=16, o=16, m=16, x=1, k=3, s=1, se=4, gate="sigmoid", act="relu6", res=1),
       make_op("se", r=8, c=32, se=8, gate="sigmoid"),
       make_op("add", r=8, c=32),
       make_op("pool", r=7, c=32),
       make_op("fc", i=32, o=10, act="relu")]
OUT_SHAPES = [(1, 16, 8, 8), (1, 16, 8, 8), (1, 64, 1, 1), (1, 16, 16, 16), (1, 24, 8, 8), (1, 16, 8, 8),
              (1, 32, 8, 8), (1, 32, 8, 8), (1, 32, 1, 1), (1, 10)]


@pytest.mark.parametrize("op, out_shape", list(zip(OPS, OUT_SHAPES)), ids=[o.kind for o in OPS])
def test_op_builders(op, out_shape, cache, tmp_path):
    pytest.importorskip("tensorflow")
    from latbench.build.tflite_convert import to_tflite

    module, in_shape = build_torch_op(op)
    assert in_shape[0] == 1 and build_torch_op(op, batch=2)[1] == (2,) + in_shape[1:]
    x = np.random.default_rng(2).standard_normal(in_shape).astype(np.float32)
    ref = run_torch(module, x)
    assert ref.shape == out_shape

    path = export_onnx(module, tmp_path / "op.onnx")
    got = run_ort(path, x)
    assert got.shape == out_shape and rel_err(got, ref) < 1e-4
    assert {onnx_node_layer(n.name) for n in onnx.load(str(path)).graph.node} <= (
        valid_parts(op_arch(op)) if op_arch(op) else {(0, op.kind)})

    got = run_tflite(to_tflite(op, cache_dir=cache), x)
    assert got.shape == out_shape and rel_err(got, ref) < 1e-3


def test_add_op_is_x_plus_x():
    module, shape = build_torch_op("add:r=4:c=3")
    x = torch.randn(shape)
    assert torch.equal(module(x), x + x)


# ---------------------------------------------------------------------- cache
def test_tflite_cache_hit_does_not_reconvert(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    from latbench.build import tflite_convert

    calls = []
    real = tflite_convert.convert_tflite
    monkeypatch.setattr(tflite_convert, "convert_tflite", lambda *a, **k: calls.append(1) or real(*a, **k))
    op = "conv:r=8:i=4:o=8:k=3:s=1:g=1:act=relu:bn=1"
    first = tflite_convert.to_tflite(op, cache_dir=tmp_path)
    mtime = first.stat().st_mtime_ns
    again = tflite_convert.to_tflite(op, cache_dir=tmp_path)
    assert again == first and again.stat().st_mtime_ns == mtime and calls == [1]
    assert tflite_convert.to_tflite(op, cache_dir=tmp_path, batch=2) != first and calls == [1, 1]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left

    monkeypatch.setenv("LATBENCH_CACHE", str(tmp_path / "env"))
    from_env = tflite_convert.to_tflite(op)
    assert from_env.parent == tmp_path / "env" / "tflite" and calls == [1, 1, 1]


def test_onnx_cache_hit_does_not_reexport(tmp_path, monkeypatch):
    from latbench.build import onnx_export

    calls = []
    real = onnx_export.export_onnx
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = onnx_export.to_onnx(TINY, cache_dir=tmp_path)
    mtime = first.stat().st_mtime_ns
    renamed = parse_arch({**TINY.to_dict(), "name": "tiny"})
    assert onnx_export.to_onnx(renamed, cache_dir=tmp_path) == first and calls == [1]
    assert first.stat().st_mtime_ns == mtime
    assert onnx_export.to_onnx(TINY, cache_dir=tmp_path, batch=4) != first and len(calls) == 2
    monkeypatch.setenv("LATBENCH_CACHE", str(tmp_path / "env"))
    assert onnx_export.to_onnx(TINY).parent == tmp_path / "env" / "onnx"
    assert os.path.getsize(first) > 0
