"""TuNAS search spaces and the Pixel-1 cost model against the packaged TuNAS data file."""
import math

import numpy as np
import pytest

from latbench.arch import parse_arch
from latbench.errors import BadInput
from latbench.ops import decompose
from latbench.spaces import SPACES, get_space, space_names
from latbench.spaces.tunas import (TUNAS_SPACES, TunasSpace, load_tunas_data, scale_filters,
                                   se_channels)
from latbench.spaces.tunas.cost_model import cost_terms, pixel1_latency_ms

NAMES = list(TUNAS_SPACES)
DATA = load_tunas_data()
ACT = {"relu": "relu", "swish6": "hswish"}


@pytest.fixture(params=NAMES)
def space(request) -> TunasSpace:
    return get_space(request.param)


def samples(space, n, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def references(space):
    refs = DATA["reference_architectures"][space.tunas_key]
    return [(name, idx, refs[name]) for name, idx in space.reference_models().items()]


# ---------------------------------------------------------------------- decisions
def test_decisions_are_tunas_index_vector(space):
    vector = DATA["spaces"][space.tunas_key]["tunas_index_vector"]
    assert space.num_decisions == vector["length"] == {"proxylessnas": 73, "proxylessnas-enlarged": 73,
                                                       "mobilenetv3-like": 86}[space.name]
    assert [list(c.options) for c in space.choices] == [p["choices"] for p in vector["positions"]]
    assert len({c.name for c in space.choices}) == space.num_decisions


def test_cardinality_matches_tunas_table1(space):
    want = {"proxylessnas": 21, "proxylessnas-enlarged": 28, "mobilenetv3-like": 43}[space.name]
    assert round(math.log10(space.cardinality)) == want


# ---------------------------------------------------------------------- decode
def test_reference_archs_layer_by_layer(space):
    for name, idx, ref in references(space):
        arch = space.decode(idx, name=name)
        shapes = arch.shapes()
        k = 0
        for L in ref["layers"]:
            op = L["op"]
            if op.startswith("endpoint") or L.get("skipped"):
                continue
            if op == "activation":
                assert shapes[k - 1].layer["act"] == ACT[L["activation"]], (name, L)
                continue
            s = shapes[k]
            k += 1
            if op == "global average pool":
                assert s.type == "pool"
                continue
            lay = s.layer
            assert lay["kernel"] == L["kernel"] and lay["stride"] == L["stride"], (name, L)
            assert s.cout == L["output_filters"] and s.cin == L.get("input_filters", s.cin), (name, L)
            if op == "conv":
                assert s.type == "conv" and lay["bn"] == L["batchnorm"] and lay["groups"] == 1
            else:
                assert s.type == "mbconv", (name, L)
                assert s.mid == L.get("expansion_filters", L["input_filters"]), (name, L)
                assert lay["act"] == ACT[L.get("activation", L.get("inner_activation"))], (name, L)
                assert lay["se"] == (se_channels(s.mid) if L.get("squeeze_excite") else 0), (name, L)
                assert lay["se_gate"] == "sigmoid"
                residual = "(residual)" in op
                assert s.residual == residual, (name, L)
                if not residual:
                    assert lay["residual"] is False, (name, L)
        assert [s.type for s in shapes[k:]] == ["fc"] and shapes[-1].cout == 1000, name


def test_reference_indices_from_layers_agree_with_tunas_strings(space):
    for name, idx, ref in references(space):
        if "indices" in ref:
            assert space.canonical(space.indices_from_layers(ref)) == space.canonical(idx), name


def test_enlarged_references_match_tunas_model_archive_ops():
    space = get_space("proxylessnas-enlarged")
    for name, idx, ref in references(space):
        ops = ref["tunas_op_indices_in_mobile_model_archive"]
        mb = [s for s in space.decode(idx).shapes() if s.type == "mbconv"]
        assert mb[0].layer["kernel"] == (3, 5, 7)[ops[0]]
        got = []
        for s in mb[1:]:
            ratio = [r for r in (3.0, 6.0) if scale_filters(s.cin, r) == s.mid][0]
            got.append((0 if ratio == 3.0 else 3) + (3, 5, 7).index(s.layer["kernel"]))
        assert got == [o for o in ops[1:] if o != 6], name


def test_se_channels_follow_mobilenetv3_make_divisible():
    assert [se_channels(m) for m in (64, 72, 120, 240, 480, 672, 960)] == [16, 24, 32, 64, 120, 168, 240]
    assert [scale_filters(16, r) for r in (1.0, 3.0, 6.0)] == [16, 48, 96]
    assert scale_filters(20, 1.0) == 24 and scale_filters(4, 1.0) == 8


def test_first_layer_of_every_block_has_no_residual(space):
    for idx in samples(space, 100, seed=1):
        settings = [s for s in space.settings(idx) if s.spec.kind in ("sepconv", "bneck") and s.present]
        mb = [s for s in space.decode(idx).shapes() if s.type == "mbconv"]
        assert len(settings) == len(mb)
        for st, s in zip(settings, mb):
            if st.spec.layer == 0:
                assert s.layer["residual"] is False and not s.residual
            else:
                assert s.residual


def test_enlarged_first_layer_with_matching_shapes_stays_plain():
    space = get_space("proxylessnas-enlarged")
    idx = space.reference_models()["MobileNetV2"]
    names = [c.name for c in space.choices]
    idx[names.index("block4/filters")] = space.choices[names.index("block4/filters")].options.index(96)
    present = [s.spec.name for s in space.settings(idx) if s.spec.kind in ("sepconv", "bneck") and s.present]
    mb = [s for s in space.decode(idx).shapes() if s.type == "mbconv"]
    first = mb[present.index("block5/layer0")]
    assert first.cin == first.cout == 96 and first.layer["stride"] == 1
    assert first.layer["residual"] is False and not first.residual


def test_decoded_archs_are_valid_and_sized(space):
    for idx in samples(space, 30, seed=2) + list(space.reference_models().values()):
        arch = space.decode(idx)
        again = parse_arch(arch.to_dict())
        assert again.macs == arch.macs and again.indices == idx and again.space == space.name
    refs = {n: space.decode(i).macs / 1e6 for n, i in space.reference_models().items()}
    if "ProxylessNAS-Mobile" in refs:
        assert refs["ProxylessNAS-Mobile"] == pytest.approx(320, rel=0.02)
    if "MobileNetV2" in refs:
        assert refs["MobileNetV2"] == pytest.approx(300, rel=0.02)


# ---------------------------------------------------------------------- cost model
def test_pixel1_checks_from_the_data_file():
    for check in DATA["checks"]:
        space = get_space(next(n for n, c in TUNAS_SPACES.items() if c.tunas_key == check["space"]))
        if "indices" in check:
            idx = [int(t) for t in check["indices"].split(":")]
        elif check["architecture"] in space.reference_models():
            idx = space.reference_models()[check["architecture"]]
        else:
            continue  # MobileNetV3-Large: not expressible (see the check's why_not_exact)
        assert pixel1_latency_ms(space.name, idx) == pytest.approx(check["computed_ms"], abs=1e-3)


@pytest.mark.parametrize("space_name,arch,want,tol", [
    ("proxylessnas", "ProxylessNAS-Mobile", 84.4, 0.05),
    ("proxylessnas-enlarged", "ProxylessNAS-Mobile", 84.4, 0.05),
    ("proxylessnas-enlarged", "MobileNetV2", 77.2, 0.05),
    ("proxylessnas-enlarged", "MnasNet-B1", 84.5, 0.05),
    ("proxylessnas", "mobile_cost_model_test_architecture", 84.0, 1.0),
    ("mobilenetv3-like", "TuNAS_searched_best_accuracy_row", 56.58, 0.05),
])
def test_pixel1_paper_values(space_name, arch, want, tol):
    space = get_space(space_name)
    assert pixel1_latency_ms(space_name, space.reference_models()[arch]) == pytest.approx(want, abs=tol)
    assert pixel1_latency_ms(space.tunas_key, space.reference_models()[arch]) == pytest.approx(want, abs=tol)


def test_tunas_test_architecture_decodes_from_its_index_string():
    text = DATA["reference_architectures"]["proxylessnas_search"]["mobile_cost_model_test_architecture"]["indices"]
    space = get_space("proxylessnas")
    assert space.reference_models()["mobile_cost_model_test_architecture"] == [int(t) for t in text.split(":")]


def test_cost_terms_reproduce_worked_example():
    ref = DATA["reference_architectures"]["proxylessnas_search"]["ProxylessNAS-Mobile"]["worked_example"]
    space = get_space("proxylessnas")
    terms = list(cost_terms(space, space.reference_models()["ProxylessNAS-Mobile"]))
    assert [(t.layer, t.o, t.i, t.c, t.weight, t.choice) for t in terms] == \
        [(x["layer"], x["o"], x["i"], x["c"], x["weight"], x["choice"]) for x in ref["terms"]]


def test_cost_model_equals_flat_kernel_dot_product(space):
    data = DATA["spaces"][space.tunas_key]
    kernel = np.array(data["kernel_flat"])
    entries = {e["name"]: e for e in data["layers_with_cost_features"]}
    for idx in samples(space, 20, seed=3):
        x = np.zeros_like(kernel)
        for t in cost_terms(space, idx):
            e = entries[t.layer]
            n_in = len(e["input_filters_options"] or [0])
            x[e["kernel_offset"] + (t.o * n_in + t.i) * len(e["choice_features"]) + t.c] = 1
        assert pixel1_latency_ms(space, idx) == pytest.approx(data["bias"] + x @ kernel, abs=1e-9)


# ---------------------------------------------------------------------- encode
def test_encode_decode_round_trip(space):
    for idx in samples(space, 150, seed=4):
        arch = space.decode(idx)
        assert space.encode(arch) == idx
        loaded = parse_arch(arch.to_dict())
        assert space.encode(loaded) == idx
        loaded.indices = None
        canon = space.encode(loaded)
        assert canon == space.canonical(idx)
        assert space.decode(canon).to_dict()["layers"] == arch.to_dict()["layers"]


def test_encode_rejects_archs_outside_the_space(space):
    base = space.decode(list(space.reference_models().values())[0]).to_dict()
    base.pop("indices")
    bad_edits = [
        lambda L: L[1].update(kernel=9),                # kernel not an option
        lambda L: L[-1].update(out=10),                 # classifier width
        lambda L: L.pop(),                              # no fc
        lambda L: L[0].update(out=L[0]["out"] + 8),     # stem width off the options / mismatch
        lambda L: L.insert(1, dict(L[1], stride=1, residual=True, out=L[0]["out"])),  # extra layer
        lambda L: L[1].update(se=8),                    # SE channels TuNAS would not use
    ]
    for edit in bad_edits:
        d = {**base, "layers": [dict(l) for l in base["layers"]]}
        edit(d["layers"])
        arch = parse_arch(d)
        with pytest.raises(BadInput, match=r"^\S+: layers\[\d+\]"):
            space.encode(arch)


def test_bad_indices(space):
    idx = space.sample(0)
    with pytest.raises(BadInput, match="decisions"):
        space.decode(idx[:-1])
    too_big = list(idx)
    too_big[-1] = len(space.choices[-1])
    with pytest.raises(BadInput, match="out of range"):
        space.decode(too_big)
    with pytest.raises(BadInput):
        pixel1_latency_ms(space.name, [-1] + idx[1:])


# ---------------------------------------------------------------------- ops
@pytest.mark.parametrize("granularity", ["block", "layer"])
def test_ops_contain_every_sampled_arch_op(space, granularity):
    ops = space.ops(granularity)
    keys = [o.key for o in ops]
    assert len(keys) == len(set(keys)) and keys == [o.key for o in space.ops(granularity)]
    have = set(keys)
    seen = set()
    for idx in samples(space, 300, seed=5) + list(space.reference_models().values()):
        seen.update(u.op.key for u in decompose(space.decode(idx), granularity))
    assert seen <= have


def test_ops_bad_granularity():
    with pytest.raises(BadInput):
        get_space("proxylessnas").ops("network")


# ---------------------------------------------------------------------- registry
def test_registry():
    assert space_names()[:3] == NAMES
    assert {"tfnas", "tfnas-mbv2"} <= set(SPACES)
    assert SPACES["tfnas"].target == "latbench.spaces.tfnas:TFNASSpace"
    assert SPACES["tfnas-mbv2"].target == "latbench.spaces.tfnas:TFNASMBV2Space"
    assert get_space("proxylessnas") is get_space("proxylessnas")
    with pytest.raises(BadInput, match=r"space: unknown space 'x' \(known: proxylessnas, "):
        get_space("x")


# ---------------------------------------------------------------------- expansion ratio 1
def test_ratio_one_bottleneck_keeps_its_expansion_conv():
    space = get_space("mobilenetv3-like")
    idx = [0] * space.num_decisions
    for pos, c in enumerate(space.choices):  # every layer present, expansion 6 except in two layers
        if c.name.endswith("/op"):
            idx[pos] = c.options.index("layer")
        elif c.name.endswith("/expansion"):
            layer = c.name.rsplit("/", 1)[0]  # a residual layer and a block's first layer get ratio 1
            idx[pos] = c.options.index(1.0 if layer in ("block2/layer1", "block3/layer0") else 6.0)
    arch = space.decode(idx)
    present = [s.spec.name for s in space.settings(idx) if s.spec.kind in ("sepconv", "bneck") and s.present]
    mb = [s for s in arch.shapes() if s.type == "mbconv"]
    for layer in ("block2/layer1", "block3/layer0"):
        s = mb[present.index(layer)]
        assert s.mid == s.cin and s.expand and s.layer["expand_conv"] is True
        ops = [u for u in decompose(arch, "layer") if u.layer_index == s.index]
        assert [u.part for u in ops][:2] == ["expand", "dw"]
        assert ops[0].op.key.startswith(f"conv:r={s.hin}:i={s.cin}:o={s.cin}:k=1:s=1:g=1:")
        block = [u.op for u in decompose(arch, "block") if u.layer_index == s.index][0]
        assert block["x"] == 1 and block["m"] == block["i"]
        k = s.layer["kernel"]
        assert s.macs == s.cin * s.cin * s.hin ** 2 + k * k * s.cin * s.hout ** 2 + \
            2 * s.cin * s.layer["se"] + s.cin * s.cout * s.hout ** 2
    # depthwise-separable layers (mid == in as well) have no expansion conv
    sep = mb[present.index("block0/layer2")] if "block0/layer2" in present else None
    assert sep is None or (not sep.expand and sep.layer["expand_conv"] is None)
    # the flag survives the file format, and encode needs it: without it the network is not TuNAS's
    d = arch.to_dict()
    assert sum(1 for L in d["layers"] if L.get("expand_conv")) == 2
    assert space.encode(parse_arch(d)) == idx
    d.pop("indices")
    assert space.encode(parse_arch(d)) == space.canonical(idx)
    for L in d["layers"]:
        L.pop("expand_conv", None)
    with pytest.raises(BadInput, match=r"layers\[\d+\]: expand False, expected True"):
        space.encode(parse_arch(d))
