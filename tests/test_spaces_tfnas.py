"""TF-NAS search spaces `tfnas` and `tfnas-mbv2` (latbench/spaces/tfnas.py)."""
import math

import numpy as np
import pytest

from latbench.arch import parse_arch
from latbench.errors import BadInput
from latbench.ops import decompose
from latbench.references import resolve_arch
from latbench.spaces.tfnas import TFNASMBV2Space, TFNASSpace

SPACES = [TFNASSpace(), TFNASMBV2Space()]
IDS = [s.name for s in SPACES]
N_RANDOM = 200


@pytest.fixture(scope="module")
def samples():
    """200 seeded random index lists per space, with their decoded archs."""
    out = {}
    for space in SPACES:
        rng = np.random.default_rng(1234)
        idx = [space.sample(rng) for _ in range(N_RANDOM)]
        out[space.name] = [(i, space.decode(i)) for i in idx]
    return out


def _mbconvs(arch):
    return [s for s in arch.shapes() if s.type == "mbconv"]


# ---------------------------------------------------------------------- layout
def test_tfnas_decisions():
    s = TFNASSpace()
    assert s.name == "tfnas"
    assert s.num_decisions == 23
    assert s.sizes == [8] * 18 + [2, 3, 4, 4, 4]
    assert s.cardinality == 8 ** 18 * 2 * 3 * 4 * 4 * 4
    assert s.choices[0].name == "stage1/block1/op" and s.choices[17].name == "stage6/block1/op"
    assert s.decode([0] * 23).name == "tfnas" and s.decode([0] * 23, name="x").name == "x"
    assert [c.name for c in s.choices[18:]] == [f"stage{i}/depth" for i in range(1, 6)]
    assert s.choices[0].options == ("k3_e3", "k3_e6", "k5_e3", "k5_e6", "k3_e3_se", "k3_e6_se", "k5_e3_se", "k5_e6_se")
    assert len({c.name for c in s.choices}) == s.num_decisions
    d = s.describe()
    assert d["decisions"] == 23 and d["references"] == {}


def test_tfnas_mbv2_decisions():
    s = TFNASMBV2Space()
    assert s.name == "tfnas-mbv2"
    assert s.num_decisions == 41
    assert s.sizes == [4] * 18 + [5] * 18 + [2, 3, 4, 4, 4]
    assert s.cardinality == 20 ** 18 * 2 * 3 * 4 * 4 * 4
    assert s.choices[0].name == "stage3/block1/op" and s.choices[18].name == "stage3/block1/width"
    assert [c.name for c in s.choices[36:]] == [f"stage{i}/depth" for i in range(3, 8)]
    assert len({c.name for c in s.choices}) == s.num_decisions
    ratios = sorted({s.ratio(o, w) for o in range(4) for w in range(5)})
    assert ratios == [2, 2.5, 3, 3.5, 4, 5, 6, 7, 8]
    assert math.isclose(s.describe()["log10_cardinality"], round(math.log10(s.cardinality), 2))


# ---------------------------------------------------------------------- decode
@pytest.mark.parametrize("space", SPACES, ids=IDS)
def test_decode_is_valid_arch(space, samples):
    for idx, arch in samples[space.name]:
        assert arch.space == space.name and arch.indices == idx
        again = parse_arch(arch.to_dict(), "decoded")
        assert again.layers == arch.layers and again.macs == arch.macs
        assert again.indices == idx and again.space == space.name
        assert arch.num_classes == 1000 and arch.shapes()[-3].cout == 1280


def test_tfnas_decode_details():
    s = TFNASSpace()
    # every block k5_e6_se at full depth
    arch = s.decode([7] * 18 + [1, 2, 3, 3, 3])
    L, S = arch.layers, arch.shapes()
    assert L[0] == {**L[0], "out": 32, "kernel": 3, "stride": 2, "act": "relu"}
    assert (S[1].cin, S[1].mid, S[1].cout, L[1]["se"], L[1]["kernel"], L[1]["act"]) == (32, 32, 16, 8, 3, "relu")
    blocks = _mbconvs(arch)[1:]
    assert len(blocks) == 18
    assert [b.cout for b in blocks] == [24] * 2 + [40] * 3 + [80] * 4 + [112] * 4 + [192] * 4 + [320]
    assert [b.layer["stride"] for b in blocks] == [2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]
    assert [b.layer["act"] for b in blocks] == ["relu"] * 2 + ["swish"] * 16
    for b in blocks:
        assert b.mid == 6 * b.cin and b.layer["se"] == b.mid // 3 == 2 * b.cin and b.layer["kernel"] == 5
    assert L[-3] == {**L[-3], "out": 1280, "kernel": 1, "act": "swish"}
    # e3 + SE: se = mid / 3 = C_in (TF-NAS tables: e.g. C_in 80 -> SE 80 for an e3 op)
    arch = s.decode([4] * 18 + [0] * 5)
    for b in _mbconvs(arch)[1:]:
        assert b.mid == 3 * b.cin and b.layer["se"] == b.cin and b.layer["kernel"] == 3
    # no SE
    assert all(b.layer["se"] == 0 for b in _mbconvs(s.decode([2] * 18 + [0] * 5))[1:])


def test_tfnas_mbv2_decode_details():
    s = TFNASMBV2Space()
    arch = s.decode([3] * 18 + [4] * 18 + [1, 2, 3, 3, 3])  # k5_e6 at ratio 8, full depth
    L = arch.layers
    assert all(l.get("act", "none") in ("relu6", "none") for l in L)
    assert L[0]["act"] == "relu6" and L[-3]["act"] == "relu6"
    S = arch.shapes()
    assert (S[1].cin, S[1].mid, S[1].cout, L[1]["se"]) == (32, 32, 16, 0)
    blocks = _mbconvs(arch)[1:]
    assert [b.cout for b in blocks] == [24] * 2 + [32] * 3 + [64] * 4 + [96] * 4 + [160] * 4 + [320]
    assert [b.layer["stride"] for b in blocks] == [2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]
    assert all(b.mid == 8 * b.cin and b.layer["kernel"] == 5 for b in blocks)
    # k3_e3 at ratio 2.5: 16 -> 40, 24 -> 60, ...
    arch = s.decode([0] * 18 + [1] * 18 + [1, 2, 3, 3, 3])
    assert all(b.mid == round(2.5 * b.cin) and b.layer["kernel"] == 3 for b in _mbconvs(arch)[1:])


# ---------------------------------------------------------------------- depth
@pytest.mark.parametrize("space", SPACES, ids=IDS)
def test_depth_semantics(space, samples):
    for idx, arch in samples[space.name]:
        depths = space.depths(idx)
        widths = [b.cout for b in _mbconvs(arch)[1:]]
        for st, d in zip(space.STAGES, depths):
            assert widths.count(st.out) == d >= 1  # first block of every stage always present
    # minimum depth keeps exactly the first block of each stage
    idx = [0] * space.num_decisions
    arch = space.decode(idx)
    assert [b.cout for b in _mbconvs(arch)[1:]] == [st.out for st in space.STAGES]
    # the choices of removed blocks do not change the arch
    other = list(idx)
    for pos, (si, b) in enumerate(space.blocks):
        if b > 0:
            other[pos] = len(space.choices[pos]) - 1
    assert space.decode(other).layers == arch.layers


def test_depth_decision_positions():
    s = TFNASSpace()
    assert [s.depth_decision(i) for i in range(6)] == [18, 19, 20, 21, 22, None]
    m = TFNASMBV2Space()
    assert [m.depth_decision(i) for i in range(6)] == [36, 37, 38, 39, 40, None]


# ---------------------------------------------------------------------- encode
@pytest.mark.parametrize("space", SPACES, ids=IDS)
def test_encode_decode_round_trip(space, samples):
    for idx, arch in samples[space.name]:
        # recorded indices come back as they were, also through the file format
        assert space.encode(arch) == idx
        assert space.encode(parse_arch(arch.to_dict())) == idx
        # without recorded indices: the canonical list, which decodes to the same network
        bare = arch.to_dict()
        del bare["space"], bare["indices"]
        enc = space.encode(parse_arch(bare))
        assert enc == space.canonical(idx)
        assert space.decode(enc).layers == arch.layers
        assert space.canonical(enc) == enc  # canonical is a fixed point
    # recorded indices that do not describe the network are ignored
    idx, arch = samples[space.name][0]
    other = next(i for i, a in samples[space.name] if a.layers != arch.layers)
    arch.indices = other
    assert space.encode(arch) == space.canonical(idx)
    arch.indices = idx


def test_encode_exact_for_canonical_tfnas():
    # at full depth every op decision is live, so encode(decode(x)) == x
    s = TFNASSpace()
    rng = np.random.default_rng(7)
    for _ in range(50):
        idx = [int(rng.integers(8)) for _ in range(18)] + [1, 2, 3, 3, 3]
        assert s.canonical(idx) == idx


def test_mbv2_ratio4_duplicate_encodes_as_e3():
    s = TFNASMBV2Space()
    n = s.num_blocks
    full = [1, 2, 3, 3, 3]
    e3_max = [0] * n + [4] * n + full        # k3_e3 at ratio 4
    e6_min = [2] * n + [0] * n + full        # k3_e6 at ratio 4
    assert s.decode(e3_max).layers == s.decode(e6_min).layers
    assert s.canonical(e6_min) == e3_max
    assert s.encode(s.decode(e6_min)) == e6_min  # recorded indices win


def test_mbv2_reference_mobilenetv2():
    s = TFNASMBV2Space()
    refs = s.reference_models()
    assert set(refs) == {"MobileNetV2"}
    shipped = resolve_arch("mobilenetv2")
    decoded = s.decode(refs["MobileNetV2"])
    def sig(arch):
        return [(x.type, x.cin, x.mid, x.cout, x.hout, x.layer.get("kernel"), x.layer.get("stride"),
                 x.layer.get("se"), x.layer.get("act"), x.residual) for x in arch.shapes()]
    assert sig(decoded) == sig(shipped)
    assert decoded.macs == shipped.macs and decoded.params == shipped.params
    assert s.encode(shipped) == refs["MobileNetV2"]


@pytest.mark.parametrize("stem", ["tfnas-a", "tfnas-b", "tfnas-c", "tfnas-d", "tfnas-cpu-a", "tfnas-cpu-b",
                                  "tfnas-a-wose", "tfnas-b-wose", "tfnas-c-wose", "tfnas-d-wose"])
def test_published_tfnas_archs_not_expressible(stem):
    """Elasticity scaling moved their mid channels off 3x/6x C_in: hence reference_models() == {}."""
    with pytest.raises(BadInput):
        TFNASSpace().encode(resolve_arch(stem))


@pytest.mark.parametrize("stem", ["tfnas-mbv2-a", "tfnas-mbv2-b"])
def test_published_mbv2_archs_not_expressible(stem):
    with pytest.raises(BadInput):
        TFNASMBV2Space().encode(resolve_arch(stem))


@pytest.mark.parametrize("stem", ["mobilenetv3-large", "mnasnet-b1", "proxylessnas-mobile"])
def test_encode_foreign_archs(stem):
    for space in SPACES:
        with pytest.raises(BadInput):
            space.encode(resolve_arch(stem))


def test_encode_rejects_near_misses():
    s = TFNASSpace()
    base = s.decode([0] * 23)
    d = base.to_dict()
    del d["space"], d["indices"]
    variants = []
    v = dict(d, layers=[dict(l) for l in d["layers"]]); v["layers"][-3]["act"] = "relu"; variants.append(v)  # head act
    v = dict(d, layers=[dict(l) for l in d["layers"]]); v["layers"][1]["se"] = 0; variants.append(v)  # fixed block SE
    v = dict(d, layers=[dict(l) for l in d["layers"]]); v["layers"][2]["mid"] = 47; variants.append(v)  # odd width
    v = dict(d, layers=[dict(l) for l in d["layers"]]); v["layers"][2]["se"] = 5; variants.append(v)  # odd SE
    v = dict(d, resolution=192); variants.append(v)
    v = dict(d, layers=d["layers"][:2] + d["layers"][3:]); variants.append(v)  # stage 1 missing
    v = dict(d, layers=[dict(l) for l in d["layers"]]); v["layers"][3]["stride"] = 1; variants.append(v)  # stride
    for raw in variants:
        arch = parse_arch(raw)
        with pytest.raises(BadInput):
            s.encode(arch)
    # too deep a stage: 3 blocks of width 24
    layers = d["layers"][:3] + [{"type": "mbconv", "mid": 72, "out": 24, "kernel": 3, "act": "relu"}] * 2 + d["layers"][3:]
    with pytest.raises(BadInput):
        s.encode(parse_arch(dict(d, layers=layers)))


# ---------------------------------------------------------------------- bad indices
@pytest.mark.parametrize("space", SPACES, ids=IDS)
def test_bad_indices(space):
    n = space.num_decisions
    for bad in ([0] * (n - 1), [0] * (n + 1), [0] * (n - 1) + [-1], [8] + [0] * (n - 1),
                [0] * (n - 1) + [len(space.choices[-1])], []):
        with pytest.raises(BadInput):
            space.decode(bad)


# ---------------------------------------------------------------------- ops
@pytest.mark.parametrize("granularity", ["block", "layer"])
@pytest.mark.parametrize("space", SPACES, ids=IDS)
def test_ops_contain_every_sampled_op(space, granularity, samples):
    ops = space.ops(granularity)
    keys = [o.key for o in ops]
    assert len(keys) == len(set(keys))
    assert keys == [o.key for o in space.ops(granularity)]  # deterministic
    keyset = set(keys)
    seen = set()
    for _, arch in samples[space.name]:
        for use in decompose(arch, granularity):
            assert use.op.key in keyset, use.op.key
            seen.add(use.op.key)
    # and nothing unreachable: every op occurs in some full-depth arch (checked through the samples plus
    # the uniform full-depth archs that cover every block option)
    for idx in _uniform_full_depth(space):
        seen.update(u.op.key for u in decompose(space.decode(idx), granularity))
    assert seen == keyset


def _uniform_full_depth(space):
    depth = [len(space.choices[space.depth_decision(si)]) - 1 for si in space.depth_stages]
    n = space.num_blocks
    if isinstance(space, TFNASMBV2Space):
        return [[o] * n + [w] * n + depth for o in range(4) for w in range(5)]
    return [[o] * n + depth for o in range(8)]


def test_ops_counts():
    # 11 distinct block positions (stage 1: 2, stages 2-5: 2 each, stage 6: 1) x options
    # + stem conv, fixed block, head conv, pool, fc
    assert len(TFNASSpace().ops("block")) == 11 * 8 + 5
    # tfnas-mbv2: 20 options per position but ratio 4 twice per kernel -> 18 distinct
    assert len(TFNASMBV2Space().ops("block")) == 11 * 18 + 5
    ops = TFNASSpace().ops("block")
    assert ops[0].kind == "conv" and ops[1].kind == "mbconv" and [o.kind for o in ops[-3:]] == ["conv", "pool", "fc"]
    layer_kinds = {o.kind for o in TFNASSpace().ops("layer")}
    assert layer_kinds == {"conv", "se", "add", "pool", "fc"}
    assert {o.kind for o in TFNASMBV2Space().ops("layer")} == {"conv", "add", "pool", "fc"}


def test_registered():
    from latbench.spaces import get_space
    assert isinstance(get_space("tfnas"), TFNASSpace)
    assert isinstance(get_space("tfnas-mbv2"), TFNASMBV2Space)


def test_bad_granularity():
    with pytest.raises(BadInput):
        TFNASSpace().ops("network")
