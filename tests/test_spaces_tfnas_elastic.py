"""`tfnas-elastic` (latbench/spaces/tfnas_elastic.py): tfnas with a width decision per block."""
import numpy as np
import pytest

from latbench.errors import BadInput
from latbench.lut.latency_model import LatencyModel
from latbench.lut import LatencyTable, make_lut
from latbench.ops import op_features
from latbench.spaces import get_space
from latbench.spaces.tfnas import TFNASSpace

torch = pytest.importorskip("torch")


def test_layout_and_widths():
    s = get_space("tfnas-elastic")
    assert s.num_decisions == 18 + 18 + 5
    assert s.choices[18].name == "stage1/block1/width" and s.choices[-1].name == "stage5/depth"
    # stage 1 block 1 (C_in 16): e3 -> 32..64, e6 -> 64..128; SE tied to C_in
    blocks = {}
    for op in range(8):
        for w in range(5):
            idx = [0] * s.num_decisions
            idx[0], idx[18] = op, w
            b = s.decode(idx).shapes()[2]
            blocks[(op, w)] = (b.mid, b.layer["kernel"], b.layer["se"])
    assert [blocks[(0, w)][0] for w in range(5)] == [32, 40, 48, 56, 64]
    assert [blocks[(1, w)][0] for w in range(5)] == [64, 80, 96, 112, 128]
    assert {blocks[(4, w)][2] for w in range(5)} == {16} and {blocks[(5, w)][2] for w in range(5)} == {32}


def test_nominal_level_is_the_tfnas_arch():
    e, t = get_space("tfnas-elastic"), TFNASSpace()
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = t.sample(rng)
        eidx = idx[:18] + [2] * 18 + idx[18:]
        a, b = t.decode(idx), e.decode(eidx)
        assert [s.layer for s in a.shapes()] == [s.layer for s in b.shapes()]
        assert e.encode(b) == eidx and e.decode(e.canonical(eidx)).to_dict()["layers"] == b.to_dict()["layers"]


def test_encode_round_trip_and_ops_cover_samples():
    s = get_space("tfnas-elastic")
    keys = {op.key for op in s.ops("block")}
    rng = np.random.default_rng(1)
    for _ in range(30):
        idx = s.sample(rng)
        arch = s.decode(idx)
        assert s.decode(s.encode(arch)).to_dict()["layers"] == arch.to_dict()["layers"]
        from latbench.ops import arch_op_keys

        assert set(arch_op_keys(arch, "block")) <= keys
    bad = s.decode(s.sample(rng))
    bad.layers[2] = dict(bad.layers[2], mid=bad.shapes()[2].mid + 1)
    bad._shapes = None
    with pytest.raises(BadInput, match="none of the tfnas-elastic ops"):
        s.encode(bad)


def test_latency_model_equals_predict():
    s = get_space("tfnas-elastic")
    entries = {op.key: {"ms": 1e-6 * op_features(op)["macs"] + 0.001} for op in s.ops("block")}
    table = LatencyTable.from_dict(make_lut(device={"name": "synthetic"}, runtime="none", batch=1, granularity="block",
                                            method="fitted", spaces=[s.name], base_ms=0.1, entries=entries,
                                            provenance_info={}))
    lm = LatencyModel(s, table)
    rng = np.random.default_rng(2)
    idx = [s.sample(rng) for _ in range(50)]
    np.testing.assert_allclose(lm.latency(idx), [table.predict(s.decode(i)).latency_ms for i in idx], rtol=1e-12)
