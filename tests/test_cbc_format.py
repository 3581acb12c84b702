"""Channel-level bypass in the arch format (NetAdaptV2): widths, MACs, op keys, builders agree."""
import numpy as np
import pytest

from latbench.arch import parse_arch
from latbench.cbc import cbc_width
from latbench.errors import BadInput
from latbench.ops import arch_op_keys, decompose, op_from_key


def arch_of(layers, res=16, cin=3, name="cbc"):
    return parse_arch({"format": "latbench-arch/1", "name": name, "resolution": res, "in_channels": cin,
                       "layers": layers})


def mb(**kw):
    return {"type": "mbconv", "act": "relu", **kw}


# Every bypass situation: stem with bypass and more filters than inputs; a first block without an
# expansion conv and a partial depthwise; stride-2 block bypassing through the strided depthwise and
# the project conv (Z = T > P); a residual block with a padded add (P > C); a removed block (all 0:
# the identity); a block with zero expansion filters (bypass only) and partial dw; a narrowed residual
# (P < C); a head conv with bypass; a 1x1 conv after the pool with bypass.
CBC = arch_of([
    {"type": "conv", "out": 8, "kernel": 3, "stride": 2, "act": "hswish", "bypass": 4},
    mb(mid=8, expand_conv=False, dw=4, out=8, kernel=3, bypass=4),
    mb(mid=24, dw=16, out=6, kernel=5, stride=2, se=4, se_gate="hsigmoid", bypass=12),
    mb(mid=16, dw=16, out=16, kernel=3, bypass=12, act="hswish"),
    mb(mid=0, dw=0, out=0, kernel=3, se=0, bypass=12),
    mb(mid=0, dw=8, out=4, kernel=3, se=4, bypass=12),
    mb(mid=32, dw=20, out=10, kernel=5, bypass=12),
    {"type": "conv", "out": 8, "kernel": 1, "act": "hswish", "bypass": 12},
    {"type": "pool"},
    {"type": "conv", "out": 20, "kernel": 1, "act": "hswish", "bn": False, "bypass": 24},
    {"type": "fc", "out": 5}])


def test_cbc_width_four_cases_of_fig3():
    # Case 1: C = T = 4; case 2: C = 4 < T = 6; case 3: C = 4 > T = 2; case 4: C = 4, T = 2 given
    assert [cbc_width(4, 4, m) for m in range(4, -1, -1)] == [4, 4, 4, 4, 4]
    assert [cbc_width(4, 6, m) for m in range(6, -1, -1)] == [6, 5, 4, 4, 4, 4, 4]
    assert [cbc_width(4, 2, m) for m in range(2, -1, -1)] == [2, 2, 2]
    assert cbc_width(4, None, 1) == 4  # T = infinity: every input channel can be bypassed


def test_shapes_widths_and_macs():
    s = CBC.shapes()
    assert [x.cout for x in s] == [8, 8, 12, 16, 16, 16, 16, 12, 12, 20, 5]
    c = s[2].cbc
    assert (c["e"], c["ze"], c["d"], c["zd"], c["p"], c["zp"]) == (24, 24, 16, 24, 6, 12)
    assert s[4].cbc["identity"] and s[4].macs == 0 and s[4].params == 0
    assert s[5].cbc["ze"] == 12 and s[5].cout == 16  # padded add: 16-wide skip, 4-wide path
    assert s[7].cout == 12  # head conv: Z = max(min(16, 12), 8)
    # MACs by hand: conv k*k*C*M*ho^2, mbconv exp C*E*h^2 + k^2*D*ho^2 + 2*Zd*SE + Zd*P*ho^2
    want = [9 * 3 * 8 * 64, 9 * 4 * 64 + 8 * 8 * 64, 8 * 24 * 64 + 25 * 16 * 16 + 2 * 24 * 4 + 24 * 6 * 16,
            12 * 16 * 16 + 9 * 16 * 16 + 16 * 16 * 16, 0, 9 * 8 * 16 + 2 * 12 * 4 + 12 * 4 * 16,
            16 * 32 * 16 + 25 * 20 * 16 + 32 * 10 * 16, 16 * 8 * 16, 0, 12 * 20, 20 * 5]
    assert [x.macs for x in s] == want and CBC.macs == sum(want)


def test_round_trip_and_old_files_unchanged(tmp_path):
    CBC.save(tmp_path / "a.json")
    from latbench.arch import load_arch

    b = load_arch(tmp_path / "a.json")
    assert b.macs == CBC.macs and arch_op_keys(b, "layer") == arch_op_keys(CBC, "layer")
    # a plain file never gains a field
    plain = arch_of([{"type": "conv", "out": 8, "kernel": 3, "stride": 2}, {"type": "pool"}, {"type": "fc", "out": 2}])
    assert "bypass" not in (tmp_path / "a.json").read_text().split("\n")[-2] and "bypass" not in plain.to_json()


def test_op_keys_layer_and_block():
    layer = [(u.layer_index, u.part, u.op.kind) for u in decompose(CBC, "layer")]
    assert (4, "expand", "cbconv") not in layer and not [u for u in layer if u[0] == 4]  # removed block: no op
    assert (1, "dw", "cbconv") in layer and (2, "project", "cbconv") in layer and (5, "add", "addpad") in layer
    assert (5, "expand", "cbconv") in layer  # zero filters, but it narrows 16 -> 12 channels (a slice)
    assert (3, "dw", "conv") in layer  # every channel filtered: the plain depthwise key
    for key in arch_op_keys(CBC, "layer") + arch_op_keys(CBC, "block"):
        assert op_from_key(key).key == key
    block = [u.op.kind for u in decompose(CBC, "block")]
    assert block.count("mbcbc") == 5  # 6 blocks, one removed


@pytest.mark.parametrize("layer, msg", [
    ({"type": "conv", "out": 0, "kernel": 1}, "out: must be a positive integer"),
    ({"type": "conv", "out": 4, "kernel": 1, "bypass": 0}, "bypass: must be a positive integer T or true"),
    ({"type": "conv", "out": 4, "kernel": 1, "depthwise": True}, "depthwise: only with channel-level bypass"),
    ({"type": "conv", "out": 4, "kernel": 1, "groups": 2, "bypass": 2}, "groups: a conv with bypass is dense"),
    (mb(mid=8, out=8, dw=4), "dw: only with channel-level bypass"),
    (mb(mid=8, out=8, dw=9, bypass=4), "dw: at most the 8 channels"),
    (mb(mid=8, out=8, stride=2, residual=True, bypass=4), "residual: a residual add needs stride 1"),
])
def test_bad_bypass_fields(layer, msg):
    with pytest.raises(BadInput, match=msg):
        arch_of([layer])


torch = pytest.importorskip("torch")


def test_removed_block_is_identity_and_bypass_copies_inputs():
    from latbench.build.torch_model import build_torch

    net = build_torch(CBC)
    x = torch.randn(1, 16, 8, 8)
    assert torch.equal(net.L4(x), x)
    # the stride-2 block: output channels 6..11 are depthwise-output channels 6..11, the dw bypassed
    # 16..23 of the expansion output (strided); the stem's channels 3.. are filters only (C = 3 < M)
    y = torch.randn(1, 8, 8, 8)
    e = net.L2.expand(y)
    d = net.L2.dw(e)
    assert torch.equal(d[:, 16:], e[:, 16:, ::2, ::2])
    se = net.L2.se(d)
    assert torch.equal(net.L2(y)[:, 6:12], se[:, 6:12])


def test_torch_onnx_tflite_agree_on_cbc(tmp_path):
    pytest.importorskip("tensorflow")
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from latbench.build.onnx_export import onnx_node_layer, to_onnx
    from latbench.build.tflite_convert import tflite_interpreter, to_tflite
    from latbench.build.torch_model import build_torch

    net = build_torch(CBC)
    x = np.random.default_rng(1).standard_normal(net.input_shape(1)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    path = to_onnx(CBC, cache_dir=tmp_path)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-4
    nodes = [n.name for n in onnx.load(str(path)).graph.node]
    mapped = {onnx_node_layer(n) for n in nodes}
    assert None not in mapped and mapped == {(u.layer_index, u.part) for u in decompose(CBC, "layer")}
    interp = tflite_interpreter(to_tflite(CBC, cache_dir=tmp_path))
    interp.set_tensor(interp.get_input_details()[0]["index"], x.transpose(0, 2, 3, 1))
    interp.invoke()
    got = interp.get_tensor(interp.get_output_details()[0]["index"])
    assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-3


@pytest.mark.parametrize("key", [
    "cbconv:r=8:i=16:m=6:o=12:k=1:s=1:dw=0:act=relu:bn=1",
    "cbconv:r=8:i=16:m=4:o=16:k=5:s=2:dw=1:act=hswish:bn=1",
    "cbconv:r=8:i=16:m=0:o=12:k=1:s=1:dw=0:act=relu:bn=1",
    "addpad:r=4:i=8:o=12",
    "mbcbc:r=8:i=16:m=24:x=1:d=16:o=8:t=12:k=3:s=2:se=4:gate=sigmoid:act=relu:res=0",
    "mbcbc:r=8:i=16:m=0:x=1:d=8:o=4:t=12:k=3:s=1:se=0:gate=sigmoid:act=relu:res=1"])
def test_isolated_cbc_ops_build_and_agree(key, tmp_path):
    pytest.importorskip("tensorflow")
    ort = pytest.importorskip("onnxruntime")
    from latbench.build.onnx_export import export_onnx
    from latbench.build.tflite_convert import tflite_interpreter, to_tflite
    from latbench.build.torch_model import build_torch_op
    from latbench.ops import op_features

    module, shape = build_torch_op(key)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(export_onnx(module, tmp_path / "op.onnx")),
                               providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert got.shape == ref.shape and np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    interp = tflite_interpreter(to_tflite(key, cache_dir=tmp_path))
    interp.set_tensor(interp.get_input_details()[0]["index"], x.transpose(0, 2, 3, 1))
    interp.invoke()
    got = interp.get_tensor(interp.get_output_details()[0]["index"]).transpose(0, 3, 1, 2)
    assert np.abs(got - ref).max() <= 1e-3 * np.abs(ref).max()
    assert op_features(op_from_key(key))["in"] > 0
