"""LatencyModel on the TuNAS spaces: cost factors, batched latency, expected latency, Pixel-1 values.

Block/layer tables here are synthetic (ms a fixed function of each op's MACs and output size, no
device involved) but cover every op of the space, so predictions never fall back to estimates;
tunas-layer tables are the shipped Pixel-1 imports.
"""
import functools
import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch

from latbench.errors import BadInput
from latbench.lut.latency_model import LatencyModel
from latbench.lut import LatencyTable, make_lut
from latbench.lut.files import load_table
from latbench.ops import decompose, op_features
from latbench.spaces import get_space
from latbench.spaces.tunas import TUNAS_SPACES


NAMES = list(TUNAS_SPACES)
GRANULARITIES = ("block", "layer", "tunas-layer")
CASES = [(n, g) for n in NAMES for g in GRANULARITIES]
IDS = [f"{n}-{g}" for n, g in CASES]
MAX_TABLE = 10 ** 5


def synthetic_ms(op) -> float:
    f = op_features(op)
    return 1e-6 * f["macs"] + 1e-5 * f["out"] + 1e-3


@functools.lru_cache(maxsize=None)
def table(space_name: str, granularity: str) -> LatencyTable:
    if granularity == "tunas-layer":
        return load_table(f"pixel1-tunas-{space_name}")
    space = get_space(space_name)
    entries = {op.key: {"ms": synthetic_ms(op)} for op in space.ops(granularity)}
    return LatencyTable.from_dict(make_lut(
        device={"device": "synthetic", "model": "none (test table)"}, runtime="none", batch=1,
        granularity=granularity, method="fitted", spaces=[space_name], base_ms=2.0, entries=entries,
        provenance_info={"note": "synthetic for tests: ms = 1e-6*macs + 1e-5*out + 1e-3, not measured"}))


@functools.lru_cache(maxsize=None)
def model(space_name: str, granularity: str) -> LatencyModel:
    return LatencyModel(get_space(space_name), table(space_name, granularity))


def random_indices(space, n, seed):
    rng = np.random.default_rng(seed)
    return (rng.random((n, space.num_decisions)) * np.array(space.sizes)).astype(np.int64)


def arch_keys(space, indices, granularity):
    return [key for _, _, key in space.arch_keys(space.decode(indices), granularity)]


def factor_keys(factors, indices):
    return [op.key for f in factors for op in f.ops(tuple(int(indices[d]) for d in f.decisions))]


def predict(space_name, granularity, indices) -> float:
    space = get_space(space_name)
    pred = table(space_name, granularity).predict(space.decode(indices))
    assert not pred.estimated  # the tables cover every key: no estimates in the references
    return pred.latency_ms


def one_hot(space, indices):
    return [torch.nn.functional.one_hot(torch.tensor(int(i)), n).double() for i, n in zip(indices, space.sizes)]


def uniform(space):
    return [torch.full((n,), 1.0 / n, dtype=torch.float64) for n in space.sizes]


# ---------------------------------------------------------------------- cost factors
@pytest.mark.parametrize("space_name,granularity", CASES, ids=IDS)
def test_factor_keys_are_exactly_the_arch_keys(space_name, granularity):
    space = get_space(space_name)
    factors = space.cost_factors(granularity)
    samples = list(random_indices(space, 60, seed=1)) + list(space.reference_models().values())
    for idx in samples:
        assert Counter(factor_keys(factors, idx)) == Counter(arch_keys(space, idx, granularity))


@pytest.mark.parametrize("space_name,granularity", CASES, ids=IDS)
def test_factor_decisions_are_small_and_minimal(space_name, granularity):
    space = get_space(space_name)
    sizes = space.sizes
    for f in space.cost_factors(granularity):
        assert len(set(f.decisions)) == len(f.decisions) and all(sizes[d] > 1 for d in f.decisions), f.name
        dims = [sizes[d] for d in f.decisions]
        assert math.prod(dims) <= MAX_TABLE, f.name
        keys = {v: Counter(op.key for op in f.ops(v)) for v in itertools.product(*map(range, dims))}
        for a, d in enumerate(f.decisions):  # every decision changes the keys somewhere
            assert any(keys[v] != keys[v[:a] + (w,) + v[a + 1:]] for v in keys for w in range(dims[a])), \
                (f.name, space.choices[d].name)


def test_cost_factors_bad_granularity():
    with pytest.raises(BadInput):
        get_space("proxylessnas").cost_factors("network")


# ---------------------------------------------------------------------- latency
@pytest.mark.parametrize("space_name,granularity", CASES, ids=IDS)
def test_latency_equals_table_predict(space_name, granularity):
    space, m = get_space(space_name), model(space_name, granularity)
    batch = random_indices(space, 200, seed=2)
    want = np.array([predict(space_name, granularity, i) for i in batch])
    got = m.latency(batch)
    assert got.shape == (200,)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)
    np.testing.assert_allclose(m.latency(batch.astype(np.uint8)), want, rtol=1e-9, atol=0)
    single = m.latency(list(map(int, batch[7])))
    assert np.ndim(single) == 0 and single == pytest.approx(want[7], rel=1e-9)
    assert m.latency(batch[:0]).shape == (0,)


def test_latency_rejects_bad_indices():
    space = get_space("mobilenetv3-like")
    m = model("mobilenetv3-like", "block")
    batch = random_indices(space, 3000, seed=3)
    with pytest.raises(BadInput, match="decisions"):
        m.latency(batch[:, :-1])
    for bad in (-1, 99):
        b = batch.copy()
        b[2500, 5] = bad
        with pytest.raises(BadInput, match=rf"indices\[2500\]\[5\] \({space.choices[5].name}\): index {bad} out of range"):
            m.latency(b)


# ---------------------------------------------------------------------- expected latency
@pytest.mark.parametrize("space_name,granularity", CASES, ids=IDS)
def test_expected_latency_one_hot_is_latency(space_name, granularity):
    space, m = get_space(space_name), model(space_name, granularity)
    for idx in random_indices(space, 5, seed=4):
        e = m.expected_latency(one_hot(space, idx))
        assert float(e) == pytest.approx(float(m.latency(idx)), rel=1e-9)


@pytest.mark.parametrize("space_name,granularity", CASES, ids=IDS)
def test_expected_latency_uniform_is_monte_carlo_mean(space_name, granularity):
    space, m = get_space(space_name), model(space_name, granularity)
    exact = float(m.expected_latency(uniform(space)))
    lat = m.latency(random_indices(space, 40_000, seed=5))
    se = lat.std() / math.sqrt(lat.size)
    assert abs(lat.mean() - exact) < 5 * se, (lat.mean(), exact, se)


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_expected_latency_uniform_exact_by_separability(granularity):
    """proxylessnas has fixed widths, so a layer's cost depends on its own decisions only:
    E[latency] = L(x0) + Σ_layers (mean over the layer's decisions of L(x0 with them) - L(x0)),
    with L from LatencyTable.predict on decoded archs (no factors involved)."""
    name = "proxylessnas"
    space, m = get_space(name), model(name, granularity)
    groups = {}
    for pos, c in enumerate(space.choices):
        if len(c) > 1:
            groups.setdefault(c.name.rsplit("/", 1)[0], []).append(pos)
    x0 = [0] * space.num_decisions
    base = predict(name, granularity, x0)
    exact = base
    for positions in groups.values():
        values = []
        for combo in itertools.product(*[range(space.sizes[p]) for p in positions]):
            x = list(x0)
            for p, v in zip(positions, combo):
                x[p] = v
            values.append(predict(name, granularity, x))
        exact += np.mean(values) - base
    assert float(m.expected_latency(uniform(space))) == pytest.approx(exact, rel=1e-9)


# decisions that several factors share: a block width (the widths' own layers, the next block's
# first layer) and a residual layer's kernel / expansion / SE / skip
COUPLED = {
    "proxylessnas": ["block2/layer1/kernel", "block2/layer1/expansion", "block2/layer1/op", "block2/layer2/op",
                     "block3/layer0/kernel"],
    "proxylessnas-enlarged": ["block4/filters", "block4/layer1/kernel", "block4/layer1/expansion", "block4/layer1/op",
                              "block5/layer0/kernel"],
    "mobilenetv3-like": ["block3/filters", "block3/layer1/expansion", "block3/layer1/se", "block3/layer1/op",
                         "block4/layer0/kernel"],
}


@pytest.mark.parametrize("space_name,granularity", CASES, ids=IDS)
def test_expected_latency_exact_by_enumeration(space_name, granularity):
    """Random (non-uniform) probabilities on a few coupled decisions, one-hot elsewhere: the
    expectation is a finite sum over decoded archs, weighted by their probabilities."""
    space, m = get_space(space_name), model(space_name, granularity)
    names = [c.name for c in space.choices]
    free = [names.index(n) for n in COUPLED[space_name]]
    rng = np.random.default_rng(6)
    x0 = [int(v) for v in random_indices(space, 1, seed=7)[0]]
    probs = one_hot(space, x0)
    for p in free:
        w = rng.random(space.sizes[p]) + 0.1
        probs[p] = torch.tensor(w / w.sum(), dtype=torch.float64)
    exact = 0.0
    for combo in itertools.product(*[range(space.sizes[p]) for p in free]):
        x = list(x0)
        weight = 1.0
        for p, v in zip(free, combo):
            x[p] = v
            weight *= float(probs[p][v])
        exact += weight * predict(space_name, granularity, x)
    assert float(m.expected_latency(probs)) == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize("space_name,granularity", CASES, ids=IDS)
def test_expected_latency_gradient(space_name, granularity):
    space, m = get_space(space_name), model(space_name, granularity)
    logits = [torch.zeros(n, dtype=torch.float64, requires_grad=True) for n in space.sizes]
    e = m.expected_latency([torch.softmax(l, 0) for l in logits])
    e.backward()
    # single-option decisions are constants (in no factor): their logits get no or a zero gradient
    grads = [l.grad for l, n in zip(logits, space.sizes) if n > 1]
    assert all(l.grad is None or not l.grad.any() for l, n in zip(logits, space.sizes) if n == 1)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(abs(float(g.sum())) < 1e-9 for g in grads)  # softmax: shifting all logits changes nothing
    assert all(float(g.abs().sum()) > 0 for g in grads)  # every searched decision changes the latency
    grads = [l.grad for l in logits]
    names = [c.name for c in space.choices]
    pos = names.index("block3/layer1/expansion")
    opts = list(space.choices[pos].options)
    g = grads[pos]
    assert g[opts.index(6.0)] > g[opts.index(3.0)]  # wider expansion: slower
    # E is affine in each decision's probabilities, so dE/dp_d[a] - dE/dp_d[b] = E[. | d=a] - E[. | d=b]
    probs = [torch.softmax(l.detach(), 0).requires_grad_() for l in logits]
    m.expected_latency(probs).backward()

    def given(k):
        cond = uniform(space)
        cond[pos] = torch.nn.functional.one_hot(torch.tensor(opts.index(k)), len(opts)).double()
        return float(m.expected_latency(cond))

    dp = probs[pos].grad
    assert float(dp[opts.index(6.0)] - dp[opts.index(3.0)]) == pytest.approx(given(6.0) - given(3.0), rel=1e-9)
    assert given(6.0) > given(3.0)


# ---------------------------------------------------------------------- Pixel-1
@pytest.mark.parametrize("space_name,arch,want", [
    ("proxylessnas", "ProxylessNAS-Mobile", 84.4),
    ("proxylessnas-enlarged", "ProxylessNAS-Mobile", 84.4),
    ("proxylessnas-enlarged", "MobileNetV2", 77.2),
    ("proxylessnas-enlarged", "MnasNet-B1", 84.5),
    ("mobilenetv3-like", "TuNAS_searched_best_accuracy_row", 56.58),
])
def test_pixel1_reference_latencies(space_name, arch, want):
    space, m = get_space(space_name), model(space_name, "tunas-layer")
    idx = space.reference_models()[arch]
    assert float(m.latency(idx)) == pytest.approx(want, abs=0.05)
    assert float(m.expected_latency(one_hot(space, idx))) == pytest.approx(want, abs=0.05)
