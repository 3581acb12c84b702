"""The fitted table's solver (lut_fit) on synthetic networks whose true cost model is known."""
import numpy as np
import pytest

from latbench.lut_fit import GROUPINGS, fit_network_latencies, weights_of
from latbench.ops import decompose, op_from_key
from latbench.profiling import sample_archs
from latbench.spaces import get_space

SPACE = get_space("proxylessnas")


def _prior(seed=0, granularity="block"):
    rng = np.random.default_rng(seed)
    return {op.key: float(rng.uniform(0.05, 1.0)) for op in SPACE.ops(granularity)}


def _networks(cost, n, stream="train", noise=0.0, seed=0):
    rng = np.random.default_rng(seed + 1)
    return [(a, cost(a) * (1 + noise * rng.standard_normal())) for a in sample_archs(SPACE, n, seed, stream)]


def _per_kind_cost(prior):
    """Layer tables: convolutions cost 1.5 × their prior, residual adds (and the fixed pool and
    classifier) 0.4 ×, plus 0.2 ms per network."""
    def cost(arch):
        return 0.2 + sum(prior[u.op.key] * (1.5 if u.op.kind == "conv" else 0.4) for u in decompose(arch, "layer"))
    return cost


def test_groupings_label_keys_by_kind_and_resolution():
    key = next(op.key for op in SPACE.ops("block") if op.kind == "mbconv")
    r = op_from_key(key).as_dict()["r"]
    assert GROUPINGS["one"](key) == "all" and GROUPINGS["kind"](key) == "mbconv"
    assert GROUPINGS["kind-resolution"](key) == f"mbconv@{r}"
    fc = next(op.key for op in SPACE.ops("block") if op.kind == "fc")
    assert GROUPINGS["kind-resolution"](fc) == "fc" and weights_of(fc) == 1280 * 1000


def test_per_kind_level_is_recovered_and_chosen_by_cross_validation():
    prior = _prior(0, "layer")
    cost = _per_kind_cost(prior)
    train = _networks(cost, 60, noise=0.002)
    keys, x, c, scaled_prior, info = fit_network_latencies(train, "layer", prior.get, 0.0)
    # one factor cannot price convolutions and adds apart: cross-validation prefers a factor per
    # kind, and per kind and resolution adds factors that earn nothing (the simpler one wins the tie)
    cv = info["cv_mape_pct"]
    assert info["prior_groups"] == "kind" and cv["kind"] < 0.5 * cv["one"]
    assert info["prior_scales"]["conv"] == pytest.approx(1.5, rel=0.02)
    assert info["prior_scales"]["add"] == pytest.approx(0.4, rel=0.1)
    # the pool and the classifier are in every network: their level cannot be told from the
    # intercept, so they keep the one factor
    assert info["prior_scales"]["pool"] == info["prior_scales"]["fc"] == info["prior_scale"]
    # a key no network used gets its prior at its kind's level
    conv = next(k for k in prior if op_from_key(k).kind == "conv")
    scale, per_mparam = info["prior_scales"]["conv"], info["prior_ms_per_mparam"]
    assert scaled_prior(conv, 1.0) == pytest.approx(scale + per_mparam * weights_of(conv) / 1e6)
    # networks the fit never saw are predicted within the noise
    table = dict(zip(keys, x))
    for arch, _ in _networks(cost, 5, "validate"):
        pred = c + sum(table[u.op.key] if u.op.key in table else scaled_prior(u.op.key, prior[u.op.key])
                       for u in decompose(arch, "layer"))
        assert pred == pytest.approx(cost(arch), rel=0.02)


def test_one_factor_is_kept_when_it_explains_the_networks():
    prior = _prior(1)
    train = _networks(lambda a: 0.1 + 1.2 * sum(prior[u.op.key] for u in decompose(a, "block")), 30)
    *_, info = fit_network_latencies(train, "block", prior.get, 0.0)
    assert info["prior_groups"] == "one" and info["prior_scale"] == pytest.approx(1.2, rel=1e-6)
    assert info["cv_mape_pct"]["one"] < 1e-3


def test_explicit_grouping_and_too_few_networks_skip_cross_validation():
    prior = _prior(2, "layer")
    cost = _per_kind_cost(prior)
    *_, info = fit_network_latencies(_networks(cost, 30), "layer", prior.get, 0.0, grouping="kind")
    assert info["prior_groups"] == "kind" and "cv_mape_pct" not in info
    calls = []
    *_, info = fit_network_latencies(_networks(cost, 8), "layer", prior.get, 0.0, progress=calls.append)
    assert info["prior_groups"] == "one" and "cv_mape_pct" not in info and calls == [1]
