"""The fitted table's solver (lut_fit) on synthetic networks whose true cost model is known."""
import numpy as np
import pytest

from latbench.lut.fit import GROUPING_CHOICES, GROUPINGS, MODELS, fit_network_latencies, weights_of
from latbench.ops import decompose, op_from_key
from latbench.measure.profiling import sample_archs
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
    train = _networks(cost, 60, noise=0.001)
    keys, x, c, scaled_prior, info = fit_network_latencies(train, "layer", prior.get, 0.0)
    # one factor cannot price convolutions and adds apart: cross-validation prefers a factor per
    # kind, and per kind and resolution adds factors that earn nothing (the simpler one wins the tie)
    cv = info["cv_mape_pct"]
    assert info["prior_groups"] == "kind" and cv["kind"] < 0.5 * cv["one"]
    assert "prior_size_slope" not in info  # no size term chosen, none reported
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


def test_a_level_that_changes_with_the_ops_size_is_recovered():
    """Ops that take longer alone run relatively faster inside a network: cost 1.2·x − 0.1·x·ln(x/m)."""
    prior = _prior(3)
    train_keys = {u.op.key for a in sample_archs(SPACE, 40, 0, "train") for u in decompose(a, "block")}
    m = float(np.median([prior[k] for k in sorted(train_keys)]))

    def cost(arch):
        return 0.1 + sum(1.2 * prior[u.op.key] - 0.1 * prior[u.op.key] * np.log(prior[u.op.key] / m)
                         for u in decompose(arch, "block"))
    keys, x, c, scaled_prior, info = fit_network_latencies(_networks(cost, 40), "block", prior.get, 0.0)
    cv = info["cv_mape_pct"]
    assert list(cv) == list(MODELS) and info["prior_groups"] == "one+size" and cv["one+size"] < 0.2 * cv["one"]
    assert info["prior_size_ref_ms"] == pytest.approx(m)
    assert info["prior_scale"] == pytest.approx(1.2, rel=1e-3) and info["prior_size_slope"] == pytest.approx(-0.1, rel=1e-2)
    # the function that prices keys from their prior (those no training network used) follows the formula
    key, gamma = keys[0], info["prior_ms_per_mparam"]
    expected = 1.2 * 3.0 - 0.1 * 3.0 * np.log(3.0 / m) + gamma * weights_of(key) / 1e6
    assert scaled_prior(key, 3.0) == pytest.approx(expected, rel=1e-3)
    # asked for a model without the size term, it is neither fitted nor reported
    *_, info = fit_network_latencies(_networks(cost, 40), "block", prior.get, 0.0, grouping="one")
    assert "prior_size_slope" not in info and "cv_mape_pct" not in info


def test_cli_lists_every_prior_model():
    from latbench.cli.lut_commands import PRIOR_GROUPS

    assert PRIOR_GROUPS == GROUPING_CHOICES
