"""Anchors, host drift and re-levelling, on a synthetic device whose level we set (no timing involved)."""
import calendar
import json
import math

import numpy as np
import pytest

from latbench.arch import Arch
from latbench.devices.base import Device, Sample
from latbench.errors import BadInput
from latbench.lut import LatencyTable, save_lut
from latbench.lut.anchors import (ANCHOR_ARCHS, ANCHOR_OPS, PREFIX, anchor_items, drift_warning, level_change,
                                  spread_pick, table_dates)
from latbench.lut.build import build_lut
from latbench.lut.relevel import relevel_table
from latbench.measure.profiling import arch_items, arch_key, op_items, sample_archs
from latbench.measure.protocol import Protocol, run_items
from latbench.measure.store import ProfileStore
from latbench.ops import decompose, op_features
from latbench.spaces import get_space
from latbench.validation import format_report, run_validation

SPACE = get_space("proxylessnas")
FIXED = Protocol(rounds=3, runs=4, warmup=0, min_warmup_s=0.0, min_round_s=0.0, extra_rounds=0)


def op_cost(op) -> float:
    f = op_features(op)
    return 0.01 + f["macs"] / 2e8 + f["weights"] / 5e7


class LevelDevice(Device):
    """A host whose speed is `level` × a fixed cost model: ops cost op_cost, a whole network 0.3 ms
    + its block ops × 0.9 (fused a little); `jitter` ± per round, alternating, when asked for."""

    name, runtime = "cpu", "synthetic"

    def __init__(self, level=1.0, jitter=0.0):
        self.level, self.jitter, self.calls = level, jitter, 0

    def available(self):
        return True, ""

    def fingerprint(self):
        return {"device": "cpu", "runtime": "synthetic", "model": "level-host"}

    def prepare(self, target):
        return target

    def cost(self, target) -> float:
        if isinstance(target, Arch):
            return 0.3 + 0.9 * sum(op_cost(u.op) for u in decompose(target, "block"))
        return op_cost(target)

    def measure(self, prepared, runs, warmup, min_warmup_s=0.0):
        self.calls += 1
        wobble = 1 + (self.jitter if self.calls % 2 else -self.jitter)
        ms = self.level * wobble * self.cost(prepared)
        return Sample([ms] * runs, timed_s=ms * runs / 1e3)


def profiled_store(path, level=1.0, n_archs=12):
    dev = LevelDevice(level)
    store = ProfileStore(path, dev.fingerprint())
    run_items(dev, op_items(SPACE, "block"), store, FIXED, progress=False)
    run_items(dev, arch_items(sample_archs(SPACE, n_archs, 0, "train"), "train"), store, FIXED, progress=False)
    return store


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    store = profiled_store(tmp_path_factory.mktemp("drift") / "p.db")
    fitted = LatencyTable.from_dict(build_lut(store, "fitted", "block", "proxylessnas"), "fitted.json")
    isolated = LatencyTable.from_dict(build_lut(store, "isolated", "block", "proxylessnas"), "isolated.json")
    return store, fitted, isolated


def test_tables_keep_anchors_spread_over_their_range(tables):
    store, fitted, isolated = tables
    a = fitted.data["anchors"]
    assert a["kind"] == "arch" and len(a["items"]) == ANCHOR_ARCHS and a["fingerprint_id"] == store.fp
    train = store.results("arch")
    for it in a["items"]:  # the stored latency, round count and CI of a training network
        assert it["ms"] == train[it["key"]]["ms"] and it["rounds"] == 3 and it["ci95_pct"] == 0.0
    ms = sorted(r["ms"] for r in train.values())
    assert {a["items"][0]["ms"], a["items"][-1]["ms"]} <= set(ms)
    assert min(it["ms"] for it in a["items"]) == ms[0] and max(it["ms"] for it in a["items"]) == ms[-1]
    o = isolated.data["anchors"]
    assert o["kind"] == "op" and len(o["items"]) == ANCHOR_OPS
    raw = store.results("op")
    assert all(it["ms"] == raw[it["key"]]["ms"] for it in o["items"])  # raw, overhead included
    # every isolated entry carries its own CI and round count
    assert all(e["rounds"] == 3 and e["ci95_pct"] == 0.0 for e in isolated.data["entries"].values())


def test_spread_pick_is_even_and_deterministic():
    kv = [(f"k{i}", float(i)) for i in range(10)]
    assert spread_pick(kv, 4) == ["k0", "k3", "k6", "k9"]
    assert spread_pick(list(reversed(kv)), 4) == ["k0", "k3", "k6", "k9"]
    assert spread_pick(kv[:3], 8) == ["k0", "k1", "k2"]


@pytest.mark.parametrize("which, level", [("fitted", 1.15), ("isolated", 1.15), ("fitted", 0.8)])
def test_relevel_recovers_a_level_change_exactly(tables, which, level):
    store, fitted, isolated = tables
    table = {"fitted": fitted, "isolated": isolated}[which]
    now = ProfileStore(":memory:", LevelDevice().fingerprint())
    data, change = relevel_table(table, LevelDevice(level), now, FIXED, progress=False)
    assert change["factor"] == pytest.approx(level, rel=1e-12)
    assert change["drift_pct"] == pytest.approx((level - 1) * 100, abs=1e-9)
    assert change["ci95_pct"] == pytest.approx([(level - 1) * 100] * 2, abs=1e-9)
    assert change["anchors"] == len(table.data["anchors"]["items"])
    for k, e in table.data["entries"].items():
        assert data["entries"][k]["ms"] == pytest.approx(e["ms"] * level, rel=1e-12)
    assert data["base_ms"] == pytest.approx(table.base_ms * level, rel=1e-12)
    if "fit_range_ms" in table.data:
        assert data["fit_range_ms"] == pytest.approx([v * level for v in table.data["fit_range_ms"]])
    for old, new in zip(table.data["anchors"]["items"], data["anchors"]["items"]):
        assert new["ms"] == pytest.approx(old["ms"] * level, rel=1e-12)
    rec = data["provenance"]["relevels"][-1]
    assert rec["factor"] == change["factor"] and rec["from"] == table.source
    relevelled = LatencyTable.from_dict(data)
    arch = sample_archs(SPACE, 1, 5, "validate")[0]
    assert relevelled.predict(arch).latency_ms == pytest.approx(table.predict(arch).latency_ms * level, rel=1e-12)
    dates = table_dates(data)
    assert dates["relevelled"] == rec["created"] and dates["relevels"] == 1
    # a second re-level at the same speed finds no drift against the re-dated anchors
    again = ProfileStore(":memory:", LevelDevice().fingerprint())
    _, change2 = relevel_table(relevelled, LevelDevice(level), again, FIXED, progress=False)
    assert change2["drift_pct"] == pytest.approx(0.0, abs=1e-9)
    assert drift_warning(change2) is None


def test_anchors_are_measured_again_not_read_from_a_shared_store(tables, tmp_path):
    """validate --db on the training store itself: anchors live under their own keys, so they are
    measured now even though the store holds the training rounds of the same networks."""
    store, fitted, _ = tables
    shared = profiled_store(tmp_path / "shared.db")
    _, change = relevel_table(fitted, LevelDevice(1.2), shared, FIXED, progress=False)
    assert change["factor"] == pytest.approx(1.2, rel=1e-12)
    assert all(PREFIX + it["key"] in shared.rounds_done() for it in fitted.data["anchors"]["items"])


def test_validate_reports_drift_and_corrected_metrics(tables, tmp_path):
    store, fitted, _ = tables
    archs = sample_archs(SPACE, 12, 3, "validate")
    at_table_level = run_validation(fitted, SPACE, archs, LevelDevice(1.0),
                                    ProfileStore(tmp_path / "v0.db", LevelDevice().fingerprint()), FIXED, None, False)
    assert at_table_level["drift_pct"] == pytest.approx(0.0, abs=1e-9)
    report = run_validation(fitted, SPACE, archs, LevelDevice(1.1), ProfileStore(tmp_path / "v1.db",
                            LevelDevice().fingerprint()), FIXED, tmp_path / "out", False)
    assert report["drift_pct"] == pytest.approx(10.0, abs=1e-9)
    assert report["drift_anchors"] == ANCHOR_ARCHS
    # raw: every prediction ~9 % low; corrected: exactly the table's error at its own level
    assert report["bias_pct"] == pytest.approx((1 + at_table_level["bias_pct"] / 100) / 1.1 * 100 - 100, abs=0.05)
    for k in ("mape", "bias_pct", "within_5_pct", "within_10_pct", "kendall_tau"):
        assert report["drift_corrected"][k] == pytest.approx(at_table_level[k], abs=1e-9)
    assert report["mape"] > 5 > report["drift_corrected"]["mape"]
    line = drift_warning(report["drift"])
    assert "10.0% slower" in line and "--relevel" in line and "\n" not in line
    text = format_report(report, fitted, tmp_path / "out")
    assert "host drift since the table's sitting" in text and "+10.00%" in text and "drift-corrected: MAPE" in text
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["drift_corrected"]["mape"] == pytest.approx(report["drift_corrected"]["mape"])
    csv = (tmp_path / "out" / "archs.csv").read_text().splitlines()
    assert "corrected_error_pct" in csv[0]


def test_drift_ci_is_the_t_interval_over_the_anchors(tables):
    """Round-to-round wobble: the factor is the geometric mean of now/then, its CI the Student-t
    interval of their logs, and it covers the true level."""
    from scipy import stats

    store, fitted, _ = tables
    now = ProfileStore(":memory:", LevelDevice().fingerprint())
    run_items(LevelDevice(1.05, jitter=0.02), anchor_items(fitted), now,
              Protocol(rounds=2, runs=3, warmup=0, min_round_s=0, extra_rounds=0, seed=4), progress=False)
    change = level_change(fitted, now)
    logs = np.log([a["ratio"] for a in change["per_anchor"]])
    assert np.ptp(logs) > 0  # the wobble reached the anchors
    half = stats.t.ppf(0.975, len(logs) - 1) * np.std(logs, ddof=1) / np.sqrt(len(logs))
    assert change["factor"] == pytest.approx(np.exp(logs.mean()), rel=1e-12)
    assert change["ci95_pct"] == pytest.approx([(np.exp(logs.mean() - half) - 1) * 100,
                                                (np.exp(logs.mean() + half) - 1) * 100], rel=1e-9)
    lo, hi = change["ci95_pct"]
    assert lo < 5.0 < hi and abs(change["drift_pct"] - 5.0) < 2.1


def test_a_table_without_anchors_reports_unknown_drift_and_cannot_relevel(tables, tmp_path):
    store, fitted, _ = tables
    data = dict(fitted.data)
    data.pop("anchors")
    bare = LatencyTable.from_dict(data, "bare.json")
    archs = sample_archs(SPACE, 3, 3, "validate")
    report = run_validation(bare, SPACE, archs, LevelDevice(1.1), ProfileStore(tmp_path / "v.db",
                            LevelDevice().fingerprint()), FIXED, None, False)
    assert report["drift_pct"] is None and "drift_corrected" not in report
    assert "host drift: unknown" in format_report(report, bare, tmp_path)
    with pytest.raises(BadInput, match="bare.json: anchors: the table keeps no anchors"):
        relevel_table(bare, LevelDevice(1.1), ProfileStore(":memory:", LevelDevice().fingerprint()), FIXED, False)


@pytest.mark.parametrize("anchors, field", [
    ({"kind": "net", "measured": "x", "items": []}, "anchors: must be an object with kind arch|op"),
    ({"kind": "op", "measured": 3, "items": []}, "anchors.measured"),
    ({"kind": "op", "measured": "2024-01-01T00:00:00Z", "items": [{"key": "pool:r=1:c=8", "ms": -1}]},
     r"anchors.items\[0\].ms"),
    ({"kind": "op", "measured": "2024-01-01T00:00:00Z", "items": [{"ms": 1.0}]}, r"anchors.items\[0\].key"),
])
def test_bad_anchors_are_one_line_errors(tables, anchors, field):
    _, fitted, _ = tables
    with pytest.raises(BadInput, match=f"t.json: {field}"):
        LatencyTable.from_dict({**fitted.data, "anchors": anchors}, "t.json")


def test_table_dates_age_and_relevel():
    data = {"provenance": {"created": "2024-01-01T00:00:00Z"},
            "anchors": {"kind": "op", "measured": "2024-01-01T00:00:00Z", "items": [{"key": "k", "ms": 1.0}]}}
    d = table_dates(data, now=calendar.timegm((2024, 1, 3, 12, 0, 0)))
    assert d["age_days"] == 2.5 and d["relevelled"] is None and d["anchors"] == 1
    assert table_dates({"provenance": {}})["age_days"] is None


def test_build_lut_relevel_cli_errors(tables, tmp_path, cli):
    _, fitted, _ = tables
    path = tmp_path / "f.json"
    save_lut(fitted.data, path)
    r = cli("build-lut", "--relevel", path, "-o", tmp_path / "o.json")
    assert r.returncode == 2 and "--relevel: needs --device" in r.stderr
    r = cli("build-lut", "--relevel", path, "--db", "x.db", "--device", "cpu", "-o", tmp_path / "o.json")
    assert r.returncode == 2 and "not with --db" in r.stderr
    r = cli("build-lut", "--db", "x.db", "--device", "cpu", "-o", tmp_path / "o.json")
    assert r.returncode == 2 and "--device: measures, so only with --relevel" in r.stderr
    r = cli("build-lut", "-o", tmp_path / "o.json")
    assert r.returncode == 2 and "--db: required" in r.stderr
    r = cli("measure", "mobilenetv2", "--device", "cpu", "--budget", "5")
    assert r.returncode == 2 and "--budget" in r.stderr and "--precision" in r.stderr
    assert not (tmp_path / "o.json").exists()


def test_predict_json_says_how_old_the_table_is(tables, tmp_path, cli):
    _, fitted, _ = tables
    path = tmp_path / "f.json"
    save_lut(fitted.data, path)
    r = cli("predict", "mobilenetv2", "--lut", path, "--json")
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["table"]
    assert t["level_measured"] == fitted.data["anchors"]["measured"] and t["relevelled"] is None
    assert 0 <= t["age_days"] < 1 and t["anchors"] == ANCHOR_ARCHS


def test_relevel_cli_on_this_cpu(tmp_path, cli):
    """A real re-level of a small isolated table's op anchors on ORT: the written table is the old
    one times the factor the anchors' measurements give (no claim about the factor itself)."""
    ops = SPACE.ops("block")[:6]
    items = [{"key": op.key, "ms": 0.05, "rounds": 3, "ci95_pct": 1.0} for op in ops]
    data = {"format": "latbench-lut/1", "device": {"device": "cpu", "runtime": "ort"}, "runtime": "ort", "batch": 1,
            "granularity": "block", "method": "isolated", "spaces": ["proxylessnas"], "base_ms": 0.01,
            "entries": {op.key: {"ms": 0.04} for op in ops}, "provenance": {"created": "2024-01-01T00:00:00Z"},
            "anchors": {"kind": "op", "measured": "2024-01-01T00:00:00Z", "items": items}}
    src = tmp_path / "t.json"
    save_lut(data, src)
    r = cli("build-lut", "--relevel", src, "--device", "cpu", "--rounds", "2", "--runs", "3", "--warmup", "1",
            "-o", tmp_path / "r.json", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    f = out["drift"]["factor"]
    ratios = [a["ratio"] for a in out["drift"]["per_anchor"]]
    assert f == pytest.approx(math.exp(np.mean(np.log(ratios))), rel=1e-12) and len(ratios) == 6
    new = json.loads((tmp_path / "r.json").read_text())
    assert all(new["entries"][k]["ms"] == pytest.approx(0.04 * f, rel=1e-9) for k in new["entries"])
    assert new["anchors"]["measured"] != "2024-01-01T00:00:00Z" and len(new["provenance"]["relevels"]) == 1
    r = cli("predict", "mobilenetv2", "--lut", tmp_path / "r.json", "--json")
    assert json.loads(r.stdout)["table"]["relevelled"] == new["provenance"]["relevels"][0]["created"]


def test_arch_key_of_anchor_matches_training_key(tables):
    _, fitted, _ = tables
    for item, rec in zip(anchor_items(fitted), fitted.data["anchors"]["items"]):
        assert item.key == PREFIX + rec["key"] and arch_key(item.target) == rec["key"]


def test_anchor_count_is_chosen_at_build_time(tables):
    store, _, _ = tables
    assert len(build_lut(store, "fitted", "block", "proxylessnas", anchors=3)["anchors"]["items"]) == 3
    assert "anchors" not in build_lut(store, "isolated", "block", "proxylessnas", anchors=0)
