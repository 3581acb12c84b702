"""Building tables from real CPU measurements (ONNX Runtime) and validating them end to end."""
import json

import numpy as np
import pytest

from latbench.devices.cpu import CpuDevice
from latbench.errors import BadInput
from latbench.lut import LatencyTable
from latbench.lut.build import PROBE_KEY, build_lut
from latbench.ops import decompose
from latbench.lut.extremes import extreme_archs
from latbench.lut.files import load_table
from latbench.measure.profiling import arch_items, arch_key, op_items, profile_items, sample_archs
from latbench.measure.protocol import Protocol
from latbench.spaces import get_space
from latbench.measure.store import ProfileStore

QUICK = Protocol(rounds=1, runs=3, warmup=2, min_warmup_s=0.0, min_round_s=0.0, extra_rounds=0)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """The proxylessnas block ops + 10 random whole archs (with ORT node profiles), measured for real."""
    db = tmp_path_factory.mktemp("prof") / "cpu-ort.db"
    space = get_space("proxylessnas")
    profile_items([CpuDevice("ort")], op_items(space, "block"), db, QUICK, progress=False)
    train = sample_archs(space, 10, 0, "train")
    profile_items([CpuDevice("ort")], arch_items(train, "train"), db, QUICK, progress=False, node_profiles=True)
    return db, train


def _errors(table, archs, store):
    res = store.results("arch")
    return np.array([(table.predict(a).latency_ms - res[arch_key(a)]["ms"]) / res[arch_key(a)]["ms"] for a in archs])


def test_isolated_table(profiled):
    db, train = profiled
    store = ProfileStore(db)
    lut = build_lut(store, "isolated", "block", "proxylessnas")
    space = get_space("proxylessnas")
    assert set(lut["entries"]) == {op.key for op in space.ops("block")}
    probe = store.results("probe")[PROBE_KEY]["ms"]
    assert lut["base_ms"] == pytest.approx(probe)
    assert all(e["ms"] >= 0 and e["ms"] == pytest.approx(max(0.0, e["raw_ms"] - probe)) for e in lut["entries"].values())
    assert lut["device"]["runtime"] == "ort" and lut["fingerprint_id"] == store.fp
    t = LatencyTable.from_dict(lut)
    pred = t.predict(train[0], strict=True)  # every op of the space is in the table
    assert pred.latency_ms > 0 and not pred.estimated


@pytest.mark.parametrize("granularity", ["block", "layer"])
def test_context_table_maps_nodes_to_ops(profiled, granularity):
    db, train = profiled
    store = ProfileStore(db)
    lut = build_lut(store, "context", granularity, "proxylessnas")
    assert lut["provenance"]["build"]["archs"] == 10
    from latbench.ops import arch_op_keys
    used = {k for a in train for k in arch_op_keys(a, granularity)}
    assert used == set(lut["entries"])
    assert all(e["ms"] >= 0 for e in lut["entries"].values())


def test_context_table_of_one_arch_reproduces_its_measurement(tmp_path):
    """With one training arch, node times + residual base add up to its measured latency exactly."""
    space = get_space("proxylessnas")
    arch = sample_archs(space, 1, 7, "train")
    db = tmp_path / "one.db"
    profile_items([CpuDevice("ort")], arch_items(arch, "train"), db, QUICK, progress=False, node_profiles=True)
    store = ProfileStore(db)
    t = LatencyTable.from_dict(build_lut(store, "context", "layer", "proxylessnas"))
    measured = next(iter(store.results("arch").values()))["ms"]
    assert t.predict(arch[0], strict=True).latency_ms == pytest.approx(measured, rel=1e-9)
    rows = store.node_profiles(next(iter(store.results("arch"))))[0]
    mapped = sum(r["ms"] for r in rows if r["layer"] is not None)
    assert mapped > 0.5 * sum(r["ms"] for r in rows)  # most kernel time is attributed to layers


def test_fitted_table_fits_training_archs_better_than_isolated(profiled):
    db, train = profiled
    store = ProfileStore(db)
    iso = LatencyTable.from_dict(build_lut(store, "isolated", "block", "proxylessnas"))
    fit = LatencyTable.from_dict(build_lut(store, "fitted", "block", "proxylessnas"))
    e_iso, e_fit = _errors(iso, train, store), _errors(fit, train, store)
    # least squares (in relative errors) toward the isolated prior times its fitted level can only
    # lower the training error: (prior_scale x isolated, best intercept) has no penalty and is at
    # least as good as the isolated table itself
    assert np.sqrt(np.mean(e_fit ** 2)) <= np.sqrt(np.mean(e_iso ** 2)) + 1e-9
    assert fit.data["provenance"]["build"]["weighting"].startswith("relative")
    assert fit.data["provenance"]["build"]["archs"] == 10
    assert all(e["ms"] >= 0 for e in fit.data["entries"].values())
    # the latency range of the training networks, for flagging extrapolation (predict)
    measured = [store.results("arch")[arch_key(a)]["ms"] for a in train]
    assert fit.fit_range_ms == (min(measured), max(measured)) and iso.fit_range_ms is None


def test_validate_counts_archs_predicted_outside_the_fit_range(profiled, tmp_path):
    from latbench.validation import validate_table

    db, train = profiled
    store = ProfileStore(db)
    lut = build_lut(store, "fitted", "block", "proxylessnas")
    preds = sorted(LatencyTable.from_dict(lut).predict(a).latency_ms for a in train)
    lut["fit_range_ms"] = [preds[0], (preds[4] + preds[5]) / 2]  # the five slowest lie above it
    report = validate_table(LatencyTable.from_dict(lut), get_space("proxylessnas"), train, store, tmp_path)
    assert report["outside_fit_range"] == 5
    rows = (tmp_path / "archs.csv").read_text().splitlines()[1:]
    assert sum(int(r.rsplit(",", 1)[1]) for r in rows) == 5


@pytest.mark.parametrize("granularity", ["block", "layer"])
def test_fitted_table_toward_the_context_prior(profiled, granularity):
    db, train = profiled
    store = ProfileStore(db)
    ctx = LatencyTable.from_dict(build_lut(store, "context", granularity, "proxylessnas"))
    fit = LatencyTable.from_dict(build_lut(store, "fitted", granularity, "proxylessnas", prior="context"))
    # the context table (s·entries + c over its profiled networks) is one point of the family the fit
    # starts from, with no penalty: the relative training error can only go down
    e_ctx, e_fit = _errors(ctx, train, store), _errors(fit, train, store)
    assert np.sqrt(np.mean(e_fit ** 2)) <= np.sqrt(np.mean(e_ctx ** 2)) + 1e-9
    build = fit.data["provenance"]["build"]
    assert fit.data["method"] == "fitted" and build["prior"] == "context" and build["archs"] == 10
    assert set(fit.data["entries"]) == set(ctx.data["entries"])  # no isolated measurement enters
    assert all(e["ms"] >= 0 and "context_ms" in e for e in fit.data["entries"].values())
    iso_prior = build_lut(store, "fitted", granularity, "proxylessnas") if granularity == "block" else None
    assert iso_prior is None or iso_prior["provenance"]["build"]["prior"] == "isolated"


def test_build_lut_cli_and_bad_input(profiled, tmp_path, cli):
    db, _ = profiled
    out = tmp_path / "iso.json"
    r = cli("build-lut", "--db", db, "--method", "isolated", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["entries"] == 73 and LatencyTable.load(out).data["method"] == "isolated"
    r = cli("build-lut", "--db", db, "--method", "isolated", "--granularity", "layer", "-o", tmp_path / "l.json")
    assert r.returncode == 2 and "no layer-granularity op measurements" in r.stderr
    assert not (tmp_path / "l.json").exists()
    r = cli("build-lut", "--db", db, "--method", "fitted", "--prior", "context", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["prior"] == "context" and LatencyTable.load(out).data["method"] == "fitted"
    r = cli("build-lut", "--db", db, "--method", "context", "--prior", "context", "-o", tmp_path / "c.json")
    assert r.returncode == 2 and "only the fitted method has a prior" in r.stderr
    assert not (tmp_path / "c.json").exists()
    r = cli("build-lut", "--db", db, "--method", "fitted", "--prior-groups", "kind", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["build"]["prior_groups"] == "kind"
    assert LatencyTable.load(out).data["provenance"]["build"]["prior_groups"] == "kind"
    r = cli("build-lut", "--db", db, "--method", "isolated", "--prior-groups", "kind", "-o", tmp_path / "c.json")
    assert r.returncode == 2 and "--prior-groups kind: only the fitted method" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "c.json").exists()
    r = cli("build-lut", "--db", tmp_path / "nope.db", "-o", tmp_path / "x.json")
    assert r.returncode == 2 and "no such profile store" in r.stderr
    empty = tmp_path / "empty.db"
    ProfileStore(empty, {"device": "cpu"}).close()
    with pytest.raises(BadInput, match="run `latbench profile` first"):
        build_lut(ProfileStore(empty), "isolated", "block")


def _validate_isolated_table(profiled, tmp_path, cli, *args):
    """Build the isolated table of the `profiled` store and validate it on ORT; (result, out dir)."""
    db, _ = profiled
    lut = tmp_path / "iso.json"
    assert cli("build-lut", "--db", db, "-o", lut).returncode == 0
    out = tmp_path / "val"
    r = cli("validate", "--device", "cpu", "--runtime", "ort", "--lut", lut, "--space", "proxylessnas", "--out", out,
            *args)
    assert r.returncode == 0, r.stderr
    return r, out


def test_validate_cli_writes_report_csv_png(profiled, tmp_path, cli):
    r, out = _validate_isolated_table(profiled, tmp_path, cli, "--archs", "4", "--rounds", "2", "--runs", "3", "--json")
    report = json.loads(r.stdout)
    for k in ("mape", "rmse_ms", "bias_pct", "pearson", "spearman", "kendall_tau", "within_5_pct", "within_10_pct",
              "noise_cv_pct", "noise_mape_pct"):
        assert k in report
    assert report["n"] == 4 and 0 <= report["within_10_pct"] <= 100
    assert json.loads((out / "report.json").read_text())["mape"] == report["mape"]
    rows = (out / "archs.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("indices,name,macs,predicted_ms,measured_ms")
    assert rows[0].endswith(",outside_fit_range") and report["outside_fit_range"] == 0  # isolated: no range
    assert (out / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"



def test_extreme_archs_are_the_ends_of_the_ranked_pool():
    space, table = get_space("proxylessnas"), load_table("pixel1-tunas-proxylessnas")
    pool = sample_archs(space, 300, 4, "extremes")
    ms = sorted(table.predict(a).latency_ms for a in pool)
    got = extreme_archs(space, table, 3, 4, pool=300)
    assert [table.predict(a).latency_ms for a in got] == pytest.approx(ms[:3] + ms[::-1][:3])  # fastest, slowest
    skip = got[:1]  # an excluded arch (e.g. already a training arch) is not picked again
    again = extreme_archs(space, table, 3, 4, exclude=skip, pool=300)
    assert skip[0].indices not in [a.indices for a in again] and again[:2] == got[1:3]
    assert len(extreme_archs(space, table, 5, 4, pool=3)) == 2  # k is capped at half the pool
    assert not {tuple(a.indices) for a in got} & {tuple(a.indices) for a in sample_archs(space, 150, 4, "train")}


def test_profile_extremes_adds_the_ends_of_the_space(profiled, tmp_path, cli):
    """profile --archs 2 --extremes 2 ranks 3000 random archs by the store's isolated table: the 4 extra
    training networks lie beyond every uniform random training network (which seldom reach the ends)."""
    import shutil

    db = tmp_path / "copy.db"
    shutil.copy(profiled[0], db)
    res = cli("profile", "--device", "cpu", "--runtime", "ort", "--space", "proxylessnas", "--archs", "2",
              "--extremes", "2", "--rounds", "1", "--runs", "2", "--warmup", "1", "--db", db, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["items"] == 6
    store = ProfileStore(db)
    iso = LatencyTable.from_dict(build_lut(store, "isolated", "block", "proxylessnas"))
    space = get_space("proxylessnas")
    train = {k for k, m in store.items("arch").items() if m["role"] == "train"}
    store.close()
    random2 = sample_archs(space, 2, 0, "train")  # the fixture's first two: already measured
    new = train - {arch_key(a) for a in profiled[1]}
    extra = [a for a in sample_archs(space, 3000, 0, "extremes") if arch_key(a) in new]
    assert {arch_key(a) for a in extra} == new and len(extra) == 4
    pool = sorted(iso.predict(a).latency_ms for a in sample_archs(space, 3000, 0, "extremes"))
    assert sorted(iso.predict(a).latency_ms for a in extra) == pytest.approx(pool[:2] + pool[-2:])
    uniform = [iso.predict(a).latency_ms for a in profiled[1] + random2]
    assert pool[1] < min(uniform) and pool[-2] > max(uniform)


def test_validation_archs_are_held_out():
    space = get_space("proxylessnas")
    train = {tuple(a.indices) for a in sample_archs(space, 200, 0, "train")}
    val = {tuple(a.indices) for a in sample_archs(space, 100, 0, "validate")}
    assert len(val) == 100 and not train & val


def test_fidelity_metrics_known_values():
    from latbench.validation import fidelity_metrics, noise_cv
    m = fidelity_metrics([10.0, 21.0, 27.0, 44.0], [10.0, 20.0, 30.0, 40.0])
    assert m["mape"] == pytest.approx((0 + 5 + 10 + 10) / 4)
    assert m["bias_pct"] == pytest.approx((0 + 5 - 10 + 10) / 4)
    assert m["rmse_ms"] == pytest.approx(np.sqrt((0 + 1 + 9 + 16) / 4))
    assert m["within_5_pct"] == 50.0 and m["within_10_pct"] == 100.0
    assert m["kendall_tau"] == pytest.approx(1.0) and m["spearman"] == pytest.approx(1.0)
    assert m["max_abs_err_pct"] == pytest.approx(10.0)
    assert noise_cv([[1.0, 1.0], [2.0, 2.0]]) == 0.0
    assert noise_cv([[9.0, 11.0]]) == pytest.approx(10.0)


def test_noise_mape_is_the_error_noise_alone_gives_a_perfect_table():
    from latbench.validation import noise_mape, noise_warning
    # sd √2 over 2 rounds (c4(2) = √(2/π)), mean 10: σ/μ = 14.14 % / √(2/π), /√2 = 10 % / √(2/π), × √(2/π)
    assert noise_mape([[9.0, 11.0]]) == pytest.approx(10.0)
    assert noise_mape([[5.0, 5.0, 5.0]]) == 0.0
    # simulated archs measured in 5 noisy rounds: a perfect table's MAPE against the mean of the rounds
    rng = np.random.default_rng(0)
    true = rng.uniform(5, 30, 4000)
    rounds = true[:, None] * (1 + 0.04 * rng.standard_normal((4000, 5)))
    perfect_mape = float(np.mean(np.abs(rounds.mean(axis=1) - true) / true) * 100)
    assert noise_mape(list(rounds)) == pytest.approx(perfect_mape, rel=0.05)
    assert noise_warning({"noise_cv_pct": 0.8, "noise_mape_pct": 0.3}) is None
    line = noise_warning({"noise_cv_pct": 4.4, "noise_mape_pct": 1.6})
    assert line.startswith("latbench: warning:") and "MAPE ≈ 1.6%" in line and "\n" not in line


def test_bootstrap_intervals_of_the_goal_metrics():
    from scipy import stats

    from latbench.validation import _kendall_tau_b_rows, bootstrap_ci, fidelity_metrics
    m = np.linspace(5.0, 30.0, 100)
    exact = bootstrap_ci(m * 1.03, m)  # every arch 3 % over: no spread to resample
    assert exact["mape"] == pytest.approx([3.0, 3.0]) and exact["within_5_pct"] == [100.0, 100.0]
    assert exact["kendall_tau"] == pytest.approx([1.0, 1.0])
    # half the archs exact, half 8 % over: MAPE 4 %, 50 % within ±5 %, both uncertain
    p = m * np.where(np.arange(100) % 2, 1.08, 1.0)
    ci = bootstrap_ci(p, m)
    assert 3.0 < ci["mape"][0] < 4.0 < ci["mape"][1] < 5.0
    assert 35 < ci["within_5_pct"][0] < 50 < ci["within_5_pct"][1] < 65 and ci["within_10_pct"] == [100.0, 100.0]
    assert ci == bootstrap_ci(p, m)  # seeded
    wide = ci["within_5_pct"][1] - ci["within_5_pct"][0]
    ci4 = bootstrap_ci(np.tile(p, 4), np.tile(m, 4))  # 4× the archs: about half as wide (1/√4)
    assert 0.35 < (ci4["within_5_pct"][1] - ci4["within_5_pct"][0]) / wide < 0.65
    assert "ci95" in fidelity_metrics(p, m) and "ci95" not in fidelity_metrics(p[:4], m[:4])
    big = bootstrap_ci(np.tile(p, 4), np.tile(m, 4) * np.repeat([1.0, 1.001, 1.002, 1.003], 100), resamples=50)
    assert 0.9 < big["kendall_tau"][0] <= big["kendall_tau"][1] <= 1.0  # 400 archs: scipy per resample
    # the vectorised τ-b is scipy's, ties included
    rng = np.random.default_rng(0)
    P, M = rng.integers(0, 6, (20, 30)).astype(float), rng.integers(0, 6, (20, 30)).astype(float)
    assert _kendall_tau_b_rows(P, M) == pytest.approx([stats.kendalltau(a, b)[0] for a, b in zip(P, M)])


def test_validate_prints_the_intervals(profiled, tmp_path, cli):
    r, out = _validate_isolated_table(profiled, tmp_path, cli, "--archs", "10", "--rounds", "1", "--runs", "2")
    ci = json.loads((out / "report.json").read_text())["ci95"]
    assert ci["mape"][0] <= ci["mape"][1] and set(ci) >= {"mape", "within_5_pct", "within_10_pct"}
    assert f"[{ci['mape'][0]:.2f}–{ci['mape'][1]:.2f}]" in r.stdout and "95 % bootstrap intervals" in r.stdout


def test_validate_measures_on_the_tables_timing(profiled, tmp_path, cli):
    """A table built from paired measurements is validated with paired timing (same scale) unless
    --timing says otherwise."""
    db, _ = profiled
    lut = tmp_path / "iso.json"
    assert cli("build-lut", "--db", db, "-o", lut).returncode == 0
    data = json.loads(lut.read_text())
    data["device"] = {**data["device"], "timing": "paired"}
    data.pop("fingerprint_id", None)
    lut.write_text(json.dumps(data))
    env = {"LATBENCH_CACHE": str(tmp_path / "cache")}
    args = ("validate", "--archs", "2", "--device", "cpu", "--lut", lut, "--space", "proxylessnas", "--rounds", "1",
            "--runs", "2", "--json")
    r = cli(*args, "--out", tmp_path / "v1", env=env)
    assert r.returncode == 0, r.stderr
    measured_on = json.loads(r.stdout)["measured_on"]
    assert measured_on["timing"] == "paired" and measured_on["reference_ms"] > 0
    r = cli(*args, "--out", tmp_path / "v2", "--timing", "plain", env=env)
    assert r.returncode == 0, r.stderr
    assert "timing" not in json.loads(r.stdout)["measured_on"]


def test_validate_given_archs(profiled, tmp_path, cli):
    """--arch validates exactly the archs named (files, shipped names, a search's result.json), in order."""
    arch = sample_archs(get_space("proxylessnas"), 1, 7, "validate")[0]
    arch_file = tmp_path / "mine.json"
    arch_file.write_text(json.dumps(arch.to_dict()))
    result = tmp_path / "result.json"
    result.write_text(json.dumps({"format": "latbench-search-result/1", "arch": arch.to_dict()}))
    r, out = _validate_isolated_table(profiled, tmp_path, cli, "--arch", arch_file, "--arch", "proxylessnas-mobile",
                                      "--arch", result, "--rounds", "1", "--runs", "2", "--json")
    assert json.loads(r.stdout)["n"] == 3
    rows = (out / "archs.csv").read_text().splitlines()[1:]
    assert [row.split(",")[1] for row in rows] == [arch.name, "ProxylessNAS-Mobile", arch.name]
    r = cli("validate", "--device", "cpu", "--lut", "pixel1-tunas-proxylessnas", "--arch", arch_file,
            "--band", "80:90", "--out", tmp_path / "v2")
    assert r.returncode == 2 and r.stderr.strip() == "latbench: error: --band: not with --arch (it selects random archs)"


def test_context_table_is_calibrated_to_end_to_end_times(profiled):
    """With ≥ 5 networks, node times are rescaled by the least-squares factor s and base c of
    measured ≈ s·Σ entries + c: on the training networks that fit is never worse than the plain
    node times plus the mean residual (s = 1), which is one of the candidates it chose among. On a
    loaded host the fit can come out degenerate (s ≤ 0); then the plain node times + mean residual
    are the table, and that is checked instead."""
    db, train = profiled
    store = ProfileStore(db)
    lut = build_lut(store, "context", "layer", "proxylessnas")
    entries = lut["entries"]
    from latbench.ops import arch_op_keys
    res = store.results("arch")
    y = np.array([res[arch_key(a)]["ms"] for a in train])
    s = lut["provenance"]["build"].get("node_time_scale")
    if s is None:  # degenerate fit: plain node times, base = mean residual of the mapped nodes
        assert all("node_ms" not in e for e in entries.values()) and np.isfinite(lut["base_ms"])
        return
    assert s > 0
    assert all(e["ms"] == pytest.approx(e["node_ms"] * s) for e in entries.values())
    node_sum = np.array([sum(entries[k]["node_ms"] for k in arch_op_keys(a, "layer")) for a in train])
    fitted = s * node_sum + lut["base_ms"]
    plain = node_sum + np.mean(y - node_sum)
    assert np.sum((fitted - y) ** 2) <= np.sum((plain - y) ** 2) + 1e-12
    table = LatencyTable.from_dict(lut)
    assert table.predict(train[0], strict=True).latency_ms == pytest.approx(fitted[0])


def test_end_to_end_calibration_recovers_scale_and_base_and_refuses_degenerate_fits():
    from latbench.lut.build import _end_to_end_calibration

    entries = {"a": {"ms": 1.0}, "b": {"ms": 2.0}, "c": {"ms": 0.5}}
    sums = [["a"], ["b"], ["a", "b"], ["a", "c"], ["b", "c"], ["a", "b", "c"]]
    x = np.array([1.0, 2.0, 3.0, 1.5, 2.5, 3.5])
    s, c = _end_to_end_calibration(entries, sums, list(1.15 * x + 0.3))
    assert s == pytest.approx(1.15) and c == pytest.approx(0.3)
    assert _end_to_end_calibration(entries, sums[:4], list(x[:4])) == (None, None)  # < 5 networks
    assert _end_to_end_calibration(entries, sums, list(5.0 - x)) == (None, None)  # s <= 0
    assert _end_to_end_calibration(entries, [["a"]] * 6, [1.0, 1.1, 0.9, 1.0, 1.2, 0.8]) == (None, None)  # no spread


def test_isolated_tables_use_ops_measured_for_another_granularity_or_space(tmp_path):
    """The stem conv is one op at block and layer granularity and in every space: measured once (for
    the block table of space A), it must be in the layer table and in space B's table too."""
    from latbench.devices.base import Sample
    from latbench.ops import make_op

    store = ProfileStore(tmp_path / "p.db", {"device": "scripted"})
    stem = make_op("conv", r=224, i=3, o=32, k=3, s=2, g=1, act="relu", bn=1).key
    head = make_op("fc", i=1280, o=1000, act="none").key
    for key, meta, ms in [(PROBE_KEY, {"granularity": "block"}, 0.05), (stem, {"space": "A", "granularity": "block"}, 0.45),
                          (head, {"space": "B", "granularity": "layer"}, 0.25)]:
        store.register(key, "probe" if key == PROBE_KEY else "op", meta)
        store.add_round(key, 0, Sample([ms] * 5))
    # the layer pass over space A and the block pass over space B find the stem already measured
    store.register(stem, "op", {"space": "A", "granularity": "layer"})
    store.register(stem, "op", {"space": "B", "granularity": "block"})
    layer_a = build_lut(store, "isolated", "layer", "A")
    assert set(layer_a["entries"]) == {stem} and layer_a["entries"][stem]["ms"] == pytest.approx(0.40)
    assert set(build_lut(store, "isolated", "block", "B")["entries"]) == {stem}
    # tags are per op, not per (space, granularity) pair: an op of both spaces and both granularities
    assert set(build_lut(store, "isolated", "layer", "B")["entries"]) == {stem, head}
    assert build_lut(store, "isolated", "layer")["spaces"] == ["A", "B"]


def _scripted_ops_store(path, space):
    """A store with every block op of `space` at a random isolated time (seeded) and a zero probe."""
    from latbench.devices.base import Sample

    store = ProfileStore(path, {"device": "scripted"})
    rng = np.random.default_rng(0)
    iso = {op.key: float(rng.uniform(0.05, 1.0)) for op in space.ops("block")}
    for key, ms in [(PROBE_KEY, 0.0), *iso.items()]:
        store.register(key, "probe" if key == PROBE_KEY else "op", {"space": space.name, "granularity": "block"})
        store.add_round(key, 0, Sample([ms] * 3))
    return store, iso


@pytest.mark.parametrize("spread,warned", [(0.02, True), (0.002, False)])
def test_build_lut_warns_when_training_networks_are_noisy(tmp_path, cli, spread, warned):
    """Two rounds per network at y·(1 ∓ d): the noise alone gives a perfect table a MAPE of exactly
    d (validation.noise_mape), which the fit would learn; build-lut warns above 1 %."""
    from latbench.devices.base import Sample

    space = get_space("proxylessnas")
    store, iso = _scripted_ops_store(tmp_path / "p.db", space)
    for it in arch_items(sample_archs(space, 12, 0, "train"), "train"):
        y = sum(iso[u.op.key] for u in decompose(it.target, "block"))
        store.register(it.key, it.kind, it.meta)
        store.add_round(it.key, 0, Sample([y * (1 - spread)] * 3))
        store.add_round(it.key, 1, Sample([y * (1 + spread)] * 3))
    store.close()
    out = tmp_path / "f.json"
    r = cli("build-lut", "--db", tmp_path / "p.db", "--method", "fitted", "--space", "proxylessnas", "-o", out)
    assert r.returncode == 0, r.stderr
    noise = LatencyTable.load(out).data["provenance"]["build"]["train_noise_mape_pct"]
    assert noise == pytest.approx(spread * 100, rel=1e-9)
    lines = [l for l in r.stderr.splitlines() if "warning" in l]
    assert len(lines) == int(warned)
    if warned:
        assert "12 training networks" in lines[0] and f"≈ {spread * 100:.1f}% MAPE" in lines[0]


def test_fitted_prior_learns_the_level_and_a_cost_per_weight(tmp_path):
    """Whole networks that cost 1.2 × their isolated ops + 0.5 ms per million weights + 0.3 ms (ops
    alone keep their weights in cache, a network fetches them): the fit recovers s and γ and then
    predicts every network exactly."""
    from latbench.devices.base import Sample
    from latbench.ops import op_features

    space = get_space("proxylessnas")
    store, iso = _scripted_ops_store(tmp_path / "p.db", space)

    def true_ms(arch):
        ops = [u.op for u in decompose(arch, "block")]
        return 0.3 + sum(1.2 * iso[o.key] + 0.5 * op_features(o)["weights"] / 1e6 for o in ops)

    train = sample_archs(space, 40, 0, "train")
    for it in arch_items(train, "train"):
        store.register(it.key, it.kind, it.meta)
        store.add_round(it.key, 0, Sample([true_ms(it.target)] * 3))
    lut = build_lut(store, "fitted", "block", "proxylessnas")
    build = lut["provenance"]["build"]
    assert build["prior_groups"] == "one" and build["prior_scale"] == pytest.approx(1.2, rel=1e-6)
    assert build["prior_ms_per_mparam"] == pytest.approx(0.5, rel=1e-5)
    table = LatencyTable.from_dict(lut)
    for arch in sample_archs(space, 5, 0, "validate"):  # networks the fit never saw
        assert table.predict(arch).latency_ms == pytest.approx(true_ms(arch), rel=1e-6)


def _recalibration_stores(tmp_path, n_now=20, now_fingerprint=None):
    """An isolated table saved from one sitting (old.json) and a store of `n_now` networks measured in a
    later one, when every network costs 1.15 × the old table's prediction + 0.1 ms; (old table, truth)."""
    from latbench.devices.base import Sample
    from latbench.lut import save_lut

    space = get_space("proxylessnas")
    store, _ = _scripted_ops_store(tmp_path / "old.db", space)
    old = build_lut(store, "isolated", "block", "proxylessnas")
    save_lut(old, tmp_path / "old.json")
    old_table = LatencyTable.from_dict(old)

    def truth(arch):
        return 1.15 * old_table.predict(arch).latency_ms + 0.1

    now = ProfileStore(tmp_path / "now.db", now_fingerprint or {"device": "scripted"})
    for it in arch_items(sample_archs(space, n_now, 0, "train"), "train"):
        now.register(it.key, it.kind, it.meta)
        now.add_round(it.key, 0, Sample([truth(it.target)] * 3))
    now.close()
    return old, truth


@pytest.mark.parametrize("now_runtime", [None, "tflite"])
def test_fitted_table_toward_an_earlier_table_recalibrates_it(tmp_path, cli, now_runtime):
    """--prior-lut: a store without a single op, only 20 networks measured now, refits an earlier
    sitting's table to the host's new speed; every other network is then predicted exactly. A table
    of another runtime is allowed (a transfer) with a note."""
    old, truth = _recalibration_stores(tmp_path, now_fingerprint={"device": "scripted", "runtime": now_runtime})
    out = tmp_path / "now.json"
    r = cli("build-lut", "--db", tmp_path / "now.db", "--method", "fitted", "--prior-lut", tmp_path / "old.json",
            "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["prior"] == "lut"
    notes = [line for line in r.stderr.splitlines() if line.startswith("note: --prior-lut")]
    assert len(notes) == (1 if now_runtime else 0) and all("another runtime than --db" in n for n in notes)
    table = LatencyTable.load(out)
    build = table.data["provenance"]["build"]
    assert build["prior"] == "lut" and build["archs"] == 20 and build["prior_scale"] == pytest.approx(1.15, rel=1e-6)
    assert build["prior_lut"]["source"] == str(tmp_path / "old.json") and build["prior_lut"]["method"] == "isolated"
    assert set(table.data["entries"]) == set(old["entries"]) and table.data["spaces"] == ["proxylessnas"]
    assert all("lut_ms" in e for e in table.data["entries"].values())
    for arch in sample_archs(get_space("proxylessnas"), 5, 0, "validate"):  # networks neither sitting measured
        assert table.predict(arch).latency_ms == pytest.approx(truth(arch), rel=1e-6)
        assert LatencyTable.from_dict(old).predict(arch).latency_ms < truth(arch) / 1.1


def test_prior_lut_bad_input(tmp_path, cli):
    _recalibration_stores(tmp_path, n_now=6)
    (tmp_path / "bad.json").write_text("{not json")
    base = ("build-lut", "--db", tmp_path / "now.db", "-o", tmp_path / "x.json")
    for extra, message in [
        (("--method", "isolated", "--prior-lut", tmp_path / "old.json"), "only the fitted method has a prior"),
        (("--method", "fitted", "--prior", "context", "--prior-lut", tmp_path / "old.json"), "give one prior, not both"),
        (("--method", "fitted", "--granularity", "layer", "--prior-lut", tmp_path / "old.json"),
         "a block-granularity table, but --granularity layer"),
        (("--method", "fitted", "--prior-lut", tmp_path / "bad.json"), "bad.json: malformed JSON at line 1"),
        (("--method", "fitted", "--prior-lut", tmp_path / "none.json"), "none.json: cannot read"),
        (("--method", "fitted", "--prior-lut", "nosuch"), "--prior-lut: nosuch: no such file and no shipped table"),
        (("--method", "fitted", "--prior-lut", "pixel1-tunas-proxylessnas"), "a tunas-layer-granularity table, but"),
    ]:
        r = cli(*base, *extra)
        assert r.returncode == 2 and message in r.stderr, (extra, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.json").exists()
