"""The latbench-arch/1 format: parsing, validation errors, shapes, MACs, round trips, CLI."""
import json

import pytest

from latbench.arch import load_arch, parse_arch
from latbench.errors import BadInput
from latbench.ops import decompose, op_from_key

DESIGN_EXAMPLE = {
    "format": "latbench-arch/1", "name": "TF-NAS-A", "resolution": 224, "in_channels": 3,
    "layers": [
        {"type": "conv", "out": 32, "kernel": 3, "stride": 2, "act": "relu"},
        {"type": "mbconv", "mid": 32, "out": 16, "kernel": 3, "stride": 1, "se": 8, "act": "relu"},
        {"type": "mbconv", "expand": 6, "out": 24, "kernel": 5, "stride": 2, "act": "relu6"},
        {"type": "conv", "out": 1280, "kernel": 1, "act": "swish"},
        {"type": "pool"},
        {"type": "fc", "out": 1000}]}


def test_design_example_shapes_and_macs():
    arch = parse_arch(DESIGN_EXAMPLE)
    s = arch.shapes()
    assert [x.hout for x in s] == [112, 112, 56, 56, 1, 1]
    assert [x.cout for x in s] == [32, 16, 24, 1280, 1280, 1000]
    assert s[1].mid == 32 and s[2].mid == 96
    # stem: 3*3*3*32*112*112
    assert s[0].macs == 3 * 3 * 3 * 32 * 112 * 112
    # block 1: no expansion (mid == in), dw 3x3, SE 2*32*8, project 32->16
    assert s[1].macs == 9 * 32 * 112 * 112 + 2 * 32 * 8 + 32 * 16 * 112 * 112
    # block 2: expand 16->96 at 112, dw 5x5 s2 at 56, project 96->24
    assert s[2].macs == 16 * 96 * 112 * 112 + 25 * 96 * 56 * 56 + 96 * 24 * 56 * 56
    assert s[5].macs == 1280 * 1000 and s[5].params == 1280 * 1000 + 1000
    assert arch.macs == sum(x.macs for x in s)


def test_round_trip_save_load(tmp_path):
    arch = parse_arch(DESIGN_EXAMPLE)
    path = tmp_path / "a.json"
    arch.save(path)
    again = load_arch(path)
    assert again.layers == arch.layers and again.macs == arch.macs and again.name == "TF-NAS-A"
    assert json.loads(path.read_text())["format"] == "latbench-arch/1"


def test_residual_rules():
    layers = [{"type": "conv", "out": 16, "kernel": 3, "stride": 2},
              {"type": "mbconv", "expand": 3, "out": 16, "kernel": 3},
              {"type": "mbconv", "expand": 3, "out": 16, "kernel": 3, "residual": False},
              {"type": "mbconv", "expand": 3, "out": 24, "kernel": 3, "stride": 2}]
    arch = parse_arch({"format": "latbench-arch/1", "resolution": 32, "layers": layers})
    assert [s.residual for s in arch.shapes()] == [False, True, False, False]
    bad = dict(layers[3], residual=True)
    with pytest.raises(BadInput, match=r"layers\[1\]\.residual"):
        parse_arch({"format": "latbench-arch/1", "resolution": 32, "layers": [layers[0], bad]})


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["layers"].append({"type": "lstm", "out": 3}), r"layers\[6\]\.type: unknown layer type 'lstm'"),
    (lambda d: d["layers"][1].update(width=3), r"layers\[1\]: unknown field 'width'"),
    (lambda d: d["layers"][0].update(out=0), r"layers\[0\]\.out: must be a positive integer"),
    (lambda d: d["layers"][0].update(out=-8), r"layers\[0\]\.out"),
    (lambda d: d["layers"][2].update(mid=12), r"layers\[2\]: give exactly one of 'mid'"),
    (lambda d: d["layers"][0].update(kernel=4), r"layers\[0\]\.kernel: must be odd"),
    (lambda d: d["layers"][0].update(act="gelu"), r"layers\[0\]\.act: unknown activation"),
    (lambda d: d["layers"][1].update(se_gate="tanh"), r"layers\[1\]\.se_gate"),
    (lambda d: d["layers"][0].update(groups=5), r"layers\[0\]\.groups: 5 does not divide"),
    (lambda d: d["layers"].insert(5, {"type": "mbconv", "expand": 2, "out": 8}), r"layers\[5\]: an mbconv block cannot follow"),
    (lambda d: d["layers"].pop(4), r"layers\[4\]: fc needs a pooled"),
    (lambda d: d.update(colour="red"), r"unknown field 'colour'"),
    (lambda d: d.update(format="latbench-arch/2"), r"format: expected"),
    (lambda d: d.update(resolution=0), r"resolution: must be a positive integer"),
])
def test_bad_input_names_the_field(mutate, message):
    d = json.loads(json.dumps(DESIGN_EXAMPLE))
    mutate(d)
    with pytest.raises(BadInput, match=message):
        parse_arch(d, "x.json")


def test_cli_bad_input_one_line_exit_2(cli, write_json):
    bad = write_json('{"format": "latbench-arch/1", "layers": [', "broken.json")
    r = cli("macs", bad)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "broken.json: malformed JSON at line 1" in r.stderr
    assert "Traceback" not in r.stderr
    d = json.loads(json.dumps(DESIGN_EXAMPLE))
    d["layers"][2]["out"] = 0
    r = cli("macs", write_json(d, "zero.json"))
    assert r.returncode == 2 and "zero.json: layers[2].out: must be a positive integer" in r.stderr
    r = cli("macs", "no-such-arch")
    assert r.returncode == 2 and "no-such-arch: no such file" in r.stderr


def test_cli_macs_json(cli, write_json):
    r = cli("macs", write_json(DESIGN_EXAMPLE), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["macs"] == parse_arch(DESIGN_EXAMPLE).macs and isinstance(data["params"], int)


def test_op_keys_round_trip_and_granularity():
    arch = parse_arch(DESIGN_EXAMPLE)
    block = decompose(arch, "block")
    layer = decompose(arch, "layer")
    assert len(block) == 6
    parts = [u.part for u in layer if u.layer_index == 1]
    assert parts == ["dw", "se", "project"]  # mid == in: no expansion conv
    parts = [u.part for u in layer if u.layer_index == 2]
    assert parts == ["expand", "dw", "project"]
    for u in block + layer:
        assert op_from_key(u.op.key) == u.op
    assert block[2].op.key == "mbconv:r=112:i=16:o=24:m=96:x=1:k=5:s=2:se=0:gate=sigmoid:act=relu6:res=0"
    with pytest.raises(BadInput, match="unknown op kind"):
        op_from_key("lstm:r=1")
