"""`latbench export`: the files load and run in ONNX Runtime, LiteRT and torch, with the torch
model's output on a fixed input (float32; tolerance 1e-4 absolute + 1e-3 relative on logits of
order 1, covering BN folding and XNNPACK's reordered sums)."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.arch import parse_arch  # noqa: E402
from latbench.build.export import export_arch  # noqa: E402

ATOL, RTOL = 1e-4, 1e-3
SMALL = {"format": "latbench-arch/1", "name": "small", "resolution": 32, "in_channels": 3, "layers": [
    {"type": "conv", "out": 16, "kernel": 3, "stride": 2, "act": "hswish"},
    {"type": "mbconv", "out": 16, "mid": 48, "kernel": 5, "stride": 1, "se": 12, "act": "relu"},
    {"type": "mbconv", "out": 24, "mid": 64, "kernel": 3, "stride": 2, "act": "swish"},
    {"type": "pool"}, {"type": "fc", "out": 10}]}


@pytest.fixture(scope="module")
def small():
    return parse_arch(SMALL, "small")


@pytest.fixture(scope="module")
def reference(small):
    import torch

    from latbench.build.torch_model import build_torch

    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return x.numpy(), build_torch(small).eval()(x).numpy()


def test_onnx_runs_in_onnxruntime_like_torch(small, reference, tmp_path):
    import onnxruntime as ort

    x, want = reference
    info = export_arch(small, "onnx", tmp_path / "m.onnx")
    sess = ort.InferenceSession(info["path"], providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=RTOL)


def test_tflite_runs_in_litert_like_torch(small, reference, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    x, want = reference
    info = export_arch(small, "tflite", tmp_path / "m.tflite")
    assert info["layout"] == "NHWC" and info["input_shape"] == [1, 32, 32, 3]
    interp = Interpreter(model_path=info["path"])
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    interp.invoke()
    got = interp.get_tensor(interp.get_output_details()[0]["index"])
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=ATOL, rtol=RTOL)


def test_torchscript_loads_and_runs_like_torch(small, reference, tmp_path):
    import torch

    x, want = reference
    info = export_arch(small, "torchscript", tmp_path / "m.pt")
    got = torch.jit.load(info["path"])(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=RTOL)


def test_export_cli_writes_atomically_and_rejects_bad_input(cli, write_json, tmp_path):
    arch = write_json(SMALL)
    out = tmp_path / "sub" / "m.onnx"
    r = cli("export", arch, "--format", "onnx", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert Path(info["path"]) == out and out.stat().st_size == info["bytes"] > 0
    assert [p.name for p in out.parent.iterdir()] == ["m.onnx"]  # no temp file left behind
    r = cli("export", arch, "--format", "coreml", "-o", out)
    assert r.returncode == 2 and "--format" in r.stderr
    r = cli("export", tmp_path / "missing.json", "--format", "onnx", "-o", out)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
