"""build-lut on synthetic stores: every method against a known ground truth, no device, no timing.

A made-up device whose op k costs `truth(k)` ms exactly: isolated entries are that truth, networks
cost `SCALE · Σ truth + OFFSET`, and node profiles split a network into its layers' truths. Each test
pins one behaviour of latbench/lut/build.py (and the store and validation around it), so the slow
tests that profile the real CPU can stay few.
"""
import json

import numpy as np
import pytest

from latbench.devices.base import Sample
from latbench.errors import BadInput
from latbench.lut import LatencyTable, save_lut
from latbench.lut.build import build_lut
from latbench.measure.profiling import PROBE_KEY, arch_items, op_items, sample_archs
from latbench.measure.store import ProfileStore
from latbench.ops import decompose, op_features
from latbench.spaces import get_space
from latbench.validation import fidelity_metrics, validate_table

FINGERPRINT = {"device": "synthetic", "runtime": "none", "batch": 1}
OVERHEAD_MS = 0.05  # the probe: what one run of nothing costs
SCALE, OFFSET = 1.2, 0.3  # whole networks: SCALE · Σ isolated truth + OFFSET (fusion, launch costs)


def truth(op) -> float:
    f = op_features(op)
    return 1e-6 * f["macs"] + 1e-5 * (f["in"] + f["out"]) + 0.01


def network_ms(arch, granularity="block") -> float:
    return SCALE * sum(truth(u.op) for u in decompose(arch, granularity)) + OFFSET


def _add(store, item, ms, rounds=3):
    store.register(item.key, item.kind, item.meta)
    for r in range(rounds):
        store.add_round(item.key, r, Sample([ms] * 5))


def make_store(path, granularity="block", n_archs=0, ops=True, node_profiles=False, seed=0):
    space = get_space("proxylessnas")
    store = ProfileStore(path, FINGERPRINT)
    if ops:
        for it in op_items(space, granularity):
            _add(store, it, OVERHEAD_MS + (0.0 if it.key == PROBE_KEY else truth(it.target)))
    archs = sample_archs(space, n_archs, seed, "train") if n_archs else []
    for it in arch_items(archs, role="train"):
        _add(store, it, network_ms(it.target, granularity))
        if node_profiles:
            nodes = [{"layer": u.layer_index, "part": u.part, "ms": SCALE * truth(u.op)}
                     for u in decompose(it.target, granularity)]
            for r in range(2):
                store.add_node_profile(it.key, r, nodes)
    return store, archs


def test_isolated_entries_are_the_op_times_less_the_probe(tmp_path):
    store, _ = make_store(tmp_path / "s.db")
    lut = build_lut(store, "isolated", "block", "proxylessnas")
    space = get_space("proxylessnas")
    assert lut["base_ms"] == pytest.approx(OVERHEAD_MS)
    assert set(lut["entries"]) == {op.key for op in space.ops("block")}
    for op in space.ops("block"):
        assert lut["entries"][op.key]["ms"] == pytest.approx(truth(op), abs=1e-12)
    arch = space.decode(space.sample(1))
    want = OVERHEAD_MS + sum(truth(u.op) for u in decompose(arch, "block"))
    assert LatencyTable.from_dict(lut).predict(arch).latency_ms == pytest.approx(want)


def test_isolated_needs_ops_of_the_granularity(tmp_path):
    store, _ = make_store(tmp_path / "s.db", granularity="block")
    with pytest.raises(BadInput, match="no layer-granularity op measurements"):
        build_lut(store, "isolated", "layer", "proxylessnas")


def test_fitted_recovers_a_network_level_change(tmp_path):
    """Networks at 1.2 × Σ ops + 0.3 ms: the fitted table predicts unseen networks almost exactly, while the
    isolated table is off by the scale."""
    store, _ = make_store(tmp_path / "s.db", n_archs=40)
    space = get_space("proxylessnas")
    held_out = sample_archs(space, 30, 0, "validate")
    measured = [network_ms(a) for a in held_out]
    fitted = LatencyTable.from_dict(build_lut(store, "fitted", "block", "proxylessnas"))
    isolated = LatencyTable.from_dict(build_lut(store, "isolated", "block", "proxylessnas"))
    fit_err = fidelity_metrics([fitted.predict(a).latency_ms for a in held_out], measured)
    iso_err = fidelity_metrics([isolated.predict(a).latency_ms for a in held_out], measured)
    assert fit_err["mape"] < 0.5 < 10 < iso_err["mape"]
    build = fitted.data["provenance"]["build"]
    assert build["archs"] == 40 and build["prior"] == "isolated"
    lo, hi = fitted.data["fit_range_ms"]
    assert lo == pytest.approx(min(network_ms(a) for a in sample_archs(space, 40, 0, "train")))
    assert hi >= lo


def test_fitted_needs_five_networks(tmp_path):
    store, _ = make_store(tmp_path / "s.db", n_archs=3)
    with pytest.raises(BadInput, match="≥ 5 whole-network measurements, found 3"):
        build_lut(store, "fitted", "block", "proxylessnas")


def test_context_entries_are_calibrated_node_times(tmp_path):
    """Node times of SCALE × truth and networks of SCALE × Σ truth + OFFSET: the context table's entries
    are the node times and its base the offset (the end-to-end fit has scale 1 here)."""
    store, _ = make_store(tmp_path / "s.db", n_archs=12, ops=False, node_profiles=True)
    lut = build_lut(store, "context", "block", "proxylessnas")
    assert lut["base_ms"] == pytest.approx(OFFSET, abs=1e-9)
    assert lut["provenance"]["build"]["node_time_scale"] == pytest.approx(1.0)
    space = get_space("proxylessnas")
    table = LatencyTable.from_dict(lut)
    for a in sample_archs(space, 12, 0, "train"):
        assert table.predict(a).latency_ms == pytest.approx(network_ms(a), rel=1e-9)


def test_context_without_node_profiles_is_a_clear_error(tmp_path):
    store, _ = make_store(tmp_path / "s.db", n_archs=6)
    with pytest.raises(BadInput, match="no whole-network node profiles"):
        build_lut(store, "context", "block", "proxylessnas")


def test_prior_lut_recalibrates_an_earlier_table(tmp_path):
    """A table from an earlier sitting (isolated, at the old level) plus a few networks measured now
    (at 1.2×): the recalibrated table predicts today's networks; the prior alone does not."""
    old_store, _ = make_store(tmp_path / "old.db")
    old = LatencyTable.from_dict(build_lut(old_store, "isolated", "block", "proxylessnas"), "old.json")
    today, _ = make_store(tmp_path / "today.db", n_archs=30, ops=False)
    lut = build_lut(today, "fitted", "block", "proxylessnas", prior_table=old)
    assert lut["provenance"]["build"]["prior"] == "lut"
    assert lut["provenance"]["build"]["prior_lut"]["source"] == "old.json"
    held_out = sample_archs(get_space("proxylessnas"), 30, 0, "validate")
    measured = [network_ms(a) for a in held_out]
    new = LatencyTable.from_dict(lut)
    assert fidelity_metrics([new.predict(a).latency_ms for a in held_out], measured)["mape"] < 0.5
    assert fidelity_metrics([old.predict(a).latency_ms for a in held_out], measured)["mape"] > 10


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "isolated", "groups": "kind"}, "only the fitted method has a prior"),
    ({"method": "context", "prior": "context"}, "only the fitted method has a prior"),
    ({"method": "fitted", "prior": "median"}, "--prior: expected isolated or context"),
    ({"method": "fitted", "groups": "by-colour"}, "--prior-groups: expected one of"),
    ({"method": "magic"}, "--method: expected isolated, context or fitted"),
])
def test_build_options_are_checked(tmp_path, kwargs, match):
    store, _ = make_store(tmp_path / "s.db", n_archs=6)
    method = kwargs.pop("method")
    with pytest.raises(BadInput, match=match):
        build_lut(store, method, "block", "proxylessnas", **kwargs)


def test_prior_lut_of_another_granularity_is_refused(tmp_path):
    layer_store, _ = make_store(tmp_path / "layer.db", granularity="layer")
    prior = LatencyTable.from_dict(build_lut(layer_store, "isolated", "layer", "proxylessnas"), "layer.json")
    store, _ = make_store(tmp_path / "s.db", n_archs=6, ops=False)
    with pytest.raises(BadInput, match="layer.json: a layer-granularity table, but --granularity block"):
        build_lut(store, "fitted", "block", "proxylessnas", prior_table=prior)
    with pytest.raises(BadInput, match="give one prior, not both"):
        build_lut(store, "fitted", "layer", "proxylessnas", prior="context", prior_table=prior)


def test_tables_from_one_store_are_byte_identical_but_for_their_creation_time(tmp_path):
    store, _ = make_store(tmp_path / "s.db", n_archs=12)
    outs = []
    for i in range(2):
        lut = build_lut(store, "fitted", "block", "proxylessnas")
        lut["provenance"]["created"] = "fixed"
        save_lut(lut, tmp_path / f"t{i}.json")
        outs.append((tmp_path / f"t{i}.json").read_bytes())
    assert outs[0] == outs[1]
    json.loads(outs[0])  # and valid JSON


def test_store_results_are_medians_of_all_rounds(tmp_path):
    store = ProfileStore(tmp_path / "s.db", FINGERPRINT)
    store.register("k", "op", {"space": "proxylessnas", "granularity": "block"})
    for r, ms in enumerate(([1.0, 1.1, 5.0], [0.9, 1.0], [1.2])):
        store.add_round("k", r, Sample(list(ms)))
    res = store.results("op")["k"]
    assert res["ms"] == pytest.approx(float(np.median([1.0, 1.1, 5.0, 0.9, 1.0, 1.2])))
    assert res["n"] == 6 and store.rounds_done()["k"] == 3
    assert store.round_medians("k") == pytest.approx([1.1, 0.95, 1.2])


def test_store_refuses_another_fingerprint_and_reopens_by_id(tmp_path):
    path = tmp_path / "s.db"
    ProfileStore(path, FINGERPRINT).close()
    with pytest.raises(BadInput, match="another device fingerprint"):
        ProfileStore(path, {**FINGERPRINT, "runtime": "other"})
    again = ProfileStore(path)  # the only fingerprint, by default
    assert again.fingerprint == FINGERPRINT


def test_validate_table_reports_against_synthetic_measurements(tmp_path):
    """validate_table on a store of known network times: a table off by exactly +10 % shows bias +10 %,
    MAPE 10 %, no arch within ±5 %, all within ±10 % (up to rounding), τ = 1."""
    space = get_space("proxylessnas")
    archs = sample_archs(space, 20, 0, "validate")
    store = ProfileStore(tmp_path / "m.db", FINGERPRINT)
    for it in arch_items(archs, role="validate"):
        _add(store, it, network_ms(it.target))
    iso_store, _ = make_store(tmp_path / "s.db")
    lut = build_lut(iso_store, "isolated", "block", "proxylessnas")
    # a table predicting exactly 1.1 × the measured network: scale the truth, move the offset into the base
    lut["entries"] = {k: {**e, "ms": e["ms"] * SCALE * 1.1} for k, e in lut["entries"].items()}
    lut["base_ms"] = OFFSET * 1.1
    report = validate_table(LatencyTable.from_dict(lut), space, archs, store, tmp_path / "out")
    assert report["bias_pct"] == pytest.approx(10.0) and report["mape"] == pytest.approx(10.0)
    assert report["within_5_pct"] == 0.0 and report["kendall_tau"] == pytest.approx(1.0)
    assert report["noise_cv_pct"] == pytest.approx(0.0)
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.json", "archs.csv", "scatter.png"}
